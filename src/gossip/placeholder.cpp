// gossip: SWIM membership and MOSIX-style load dissemination (pure, tick-driven)
// Placeholder translation unit until the part lands.
namespace osmo {}
