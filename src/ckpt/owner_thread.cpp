// SPDX-License-Identifier: GPL-2.0-or-later
// OwnerThread (owner_thread.hpp): one worker, one closure at a time, the caller waiting.
#include "ckpt/owner_thread.hpp"

#include <cerrno>
#include <system_error>

namespace osmo::ckpt {

Result<std::unique_ptr<OwnerThread>> OwnerThread::start() {
  std::unique_ptr<OwnerThread> t(new OwnerThread());
  try {
    t->thread_ = std::thread([p = t.get()] { p->loop(); });
  } catch (const std::system_error& e) {
    return Error{e.code().value(), "cannot start the thread that holds the process"};
  }
  return t;
}

OwnerThread::~OwnerThread() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OwnerThread::execute(std::function<void()> task) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !task_; });  // another caller's closure first
  task_ = std::move(task);
  cv_.notify_all();
  cv_.wait(l, [&] { return !task_; });
}

void OwnerThread::loop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stop_ || task_; });
    if (task_) {
      l.unlock();
      task_();  // task_ is not touched by anyone else while set
      l.lock();
      task_ = nullptr;
      cv_.notify_all();
      continue;
    }
    return;  // stop_ and nothing to run
  }
}

}  // namespace osmo::ckpt
