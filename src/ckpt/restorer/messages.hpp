// SPDX-License-Identifier: GPL-2.0-or-later
// The messages between the restoring process (the caller of restore()) and the processes it
// builds (init, the session/group placeholders, the new process): one SOCK_SEQPACKET pair,
// created before init and inherited along the chain, each message one datagram
// [tag][body], optionally carrying one fd (SCM_RIGHTS). Both ends are this same binary on the
// same machine, so the body is raw host-endian data. Who sends what, in order:
//
//   new process -> caller   kReady    prepared and parked (body: ParkedReport, child.hpp)
//   init        -> caller   kPidfd    pidfd of the new process (sent after kReady or before:
//                                     init and the new process run side by side)
//   any of them -> caller   kError    a step failed (body: the message); the sender exits
//   caller      -> init     kGo       the process is fully restored; stop depending on the caller
//   init        -> caller   kDetached PR_SET_PDEATHSIG is cleared: the caller may let the
//                                     process run and go away (restore.cpp, commit)
#pragma once

#include <cstddef>
#include <string>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace osmo::ckpt::restorer {

// The tag is the first byte of every message. Values are letters so that a trace (strace -e
// sendmsg) reads; they are private to one binary, not a stored or network format.
enum class MsgTag : char {
  kError = 'E',     // -> caller: a step failed; body = the error text. The sender then exits 127.
  kPidfd = 'P',     // init -> caller: the new process's pidfd rides along; empty body.
  kReady = 'R',     // new process -> caller: parked, waiting to be seized; body = ParkedReport.
  kGo = 'G',        // caller -> init: everything restored; clear PR_SET_PDEATHSIG and answer.
  kDetached = 'A',  // init -> caller: no longer dies with the caller; empty body.
};
const char* tag_name(MsgTag t);

// Waits forever (init waiting for the caller's verdict, which may take as long as a migration).
inline constexpr int kWaitForever = -1;
// How long the caller waits for any message from the processes it builds.
inline constexpr int kMsgTimeoutMs = 20000;

struct Message {
  MsgTag tag{};
  std::string body;
  UniqueFd fd;  // the fd that came with it, if any
};

// Sends one message; pass_fd >= 0 is passed along (the sender keeps its copy).
Status send_msg(int sock, MsgTag tag, const void* body = nullptr, std::size_t n = 0, int pass_fd = -1);
// Receives one message; `waiting_for` names it in errors ("timed out waiting for <...>").
Result<Message> recv_msg(int sock, const char* waiting_for, int timeout_ms = kMsgTimeoutMs);
// For the processes being built: reports the error to the caller and exits 127.
[[noreturn]] void die_with(int sock, const Error& e);

}  // namespace osmo::ckpt::restorer
