// SPDX-License-Identifier: GPL-2.0-or-later
// A FIFO byte buffer for the relay loops: uninitialised storage (a relay moves GB through it, so
// no zero-filling), reads append at the tail, writes consume from the head, and the space of
// consumed bytes is reclaimed by sliding the (small) remainder down when the tail runs out.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>

namespace osmo::run {

class ByteBuffer {
 public:
  explicit ByteBuffer(std::size_t capacity = 0) { reserve(capacity); }

  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return end_ == begin_; }
  char* data() { return buf_.get() + begin_; }
  const char* data() const { return buf_.get() + begin_; }

  // A writable tail of at least `n` bytes; commit() what was actually written into it.
  char* tail(std::size_t n) {
    if (cap_ - end_ < n) {
      if (begin_ > 0) {
        std::memmove(buf_.get(), buf_.get() + begin_, size());
        end_ -= begin_;
        begin_ = 0;
      }
      if (cap_ - end_ < n) reserve(end_ + n);
    }
    return buf_.get() + end_;
  }
  void commit(std::size_t n) { end_ += n; }
  void append(const char* p, std::size_t n) {
    std::memcpy(tail(n), p, n);
    commit(n);
  }
  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  void clear() { begin_ = end_ = 0; }

 private:
  void reserve(std::size_t cap) {
    if (cap <= cap_) return;
    std::size_t want = cap_ == 0 ? cap : cap_;
    while (want < cap) want *= 2;
    std::unique_ptr<char[]> nb(new char[want]);
    if (size() > 0) std::memcpy(nb.get(), buf_.get() + begin_, size());
    end_ = size();
    begin_ = 0;
    buf_ = std::move(nb);
    cap_ = want;
  }

  std::unique_ptr<char[]> buf_;
  std::size_t cap_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace osmo::run
