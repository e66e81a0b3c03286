// wire: message framing, versioned append-only fields, MAC authentication
// Placeholder translation unit until the part lands.
namespace osmo {}
