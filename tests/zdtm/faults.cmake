# SPDX-License-Identifier: GPL-2.0-or-later
# Fault-injection tests: one per fault point of the engine (OSMO_FAULT=<point>, see run_fault.sh).
# The list must equal `osmo checkpoint --list-faults` and every point must be documented in
# docs/engine.md; zdtm.faults.listed checks both, so a new point cannot go untested.
set(ZDTM_FAULT_POINTS
  dump.after_seize dump.regs dump.mm dump.signals dump.fds dump.misc dump.metadata dump.pages
  dump.before_end dump.held
  restore.after_clone restore.unmap restore.vdso restore.mm restore.uffd restore.pages restore.mm_map
  restore.signals restore.creds restore.regs restore.before_detach restore.commit)

zdtm_case(fault_target)
foreach(point ${ZDTM_FAULT_POINTS})
  add_test(NAME zdtm.fault.${point}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/run_fault.sh --osmo ${ZDTM_OSMO}
                   --bin $<TARGET_FILE:zdtm_case_fault_target> --name fault_target --point ${point})
  set_tests_properties(zdtm.fault.${point} PROPERTIES
    TIMEOUT ${ZDTM_TEST_TIMEOUT} SKIP_RETURN_CODE 77 LABELS "zdtm;root;fault")
endforeach()

string(REPLACE ";" " " zdtm_fault_list "${ZDTM_FAULT_POINTS}")
add_test(NAME zdtm.faults.listed
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/check_fault_list.sh ${ZDTM_OSMO}
                 ${CMAKE_CURRENT_SOURCE_DIR}/../../docs/engine.md "${zdtm_fault_list}")
set_tests_properties(zdtm.faults.listed PROPERTIES TIMEOUT 30 LABELS "zdtm;fault")
