// platform/linux: load/capacity/memory sampling, namespaces, processes
// Placeholder translation unit until the part lands.
namespace osmo {}
