// SPDX-License-Identifier: GPL-2.0-or-later
// The engine's image bytes on the migration stream (see sealed_image.hpp).
#include "migrate/sealed_image.hpp"

namespace osmo::migrate {

Status SealingSink::write(const iovec* iov, std::size_t n) {
  if (!link_.ok()) return link_;
  Status s = sealer_.write_data(fd_, iov, n);
  if (!s.ok()) {
    link_ = s;
    return s;
  }
  for (std::size_t i = 0; i < n; ++i) bytes_ += iov[i].iov_len;
  return ok_status();
}

Status SealingSink::finish() {
  if (!link_.ok()) return link_;
  Status s = sealer_.write(fd_, wire::ChunkType::kEnd, {});
  if (!s.ok()) link_ = s;
  return s;
}

Result<std::size_t> OpeningSource::read(void* p, std::size_t n) {
  if (!link_.ok()) return link_.error();
  auto got = opener_.read_data(fd_, p, n);
  if (!got.ok()) {
    link_ = got.error();
    return got;
  }
  bytes_ += *got;
  return got;
}

Status OpeningSource::finish() {
  if (!link_.ok()) return link_;
  if (opener_.data_ended()) return ok_status();  // the restore itself met the end (a short image)
  std::uint8_t extra;
  auto got = opener_.read_data(fd_, &extra, 1);
  if (!got.ok()) {
    link_ = got.error();
    return link_;
  }
  if (*got != 0) return make_error("the image stream goes on after the image's END section");
  return ok_status();
}

}  // namespace osmo::migrate
