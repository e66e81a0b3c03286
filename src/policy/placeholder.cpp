// policy: load estimate, placement and balancing decisions (pure)
// Placeholder translation unit until the part lands.
namespace osmo {}
