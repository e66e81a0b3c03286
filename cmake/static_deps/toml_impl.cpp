// SPDX-License-Identifier: GPL-2.0-or-later
// toml++'s compiled part (its documented single-translation-unit build: TOML_IMPLEMENTATION),
// built into the `osmo` executable instead of linking libtomlplusplus.so; compiled with the same
// configuration macros as its users (the tomlplusplus target's), so the ABI namespaces match.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
