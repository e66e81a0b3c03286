// SPDX-License-Identifier: GPL-2.0-or-later
// Can this job move now? Answered without touching the job (reads /proc only), for
// `osmo migrate --check`, the `movable`/`why_not` columns of `osmo ps`, and before every
// migration (an unsupported job is refused before it is frozen).
#pragma once

#include "base/result.hpp"
#include "run/job_table.hpp"

namespace osmo::migrate {

// ok, or an error whose message says why not (one line, for the user).
Status check_movable(const run::JobRecord& rec);

}  // namespace osmo::migrate
