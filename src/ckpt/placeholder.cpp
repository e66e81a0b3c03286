// ckpt: the checkpoint/restore engine
// Placeholder translation unit until the part lands.
namespace osmo {}
