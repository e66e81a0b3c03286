// SPDX-License-Identifier: GPL-2.0-or-later
// Daemon configuration: TOML file values, command line precedence, precise refusals.
#include "daemon/config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace osmo::daemon {
namespace {

// 32 bytes as `head -c 32 /dev/urandom` makes them (not all printable).
const std::string kRandomKey("\x8f\x02\xd1\x7a\x00\xe4\x19\xb3\x5c\xfe\x61\x2d\x93\x07\xc8\x44"
                             "\x10\xaa\x3b\x7f\xd6\x58\xe2\x0c\x91\x4e\xb7\x25\x6a\xf3\x08\xcd",
                             32);

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("osmo-config-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    secret_ = (dir_ / "key").string();
    write(secret_, kRandomKey);
    ::chmod(secret_.c_str(), 0600);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }

  std::filesystem::path dir_;
  std::string secret_;
};

TEST_F(ConfigTest, FileFillsWhatTheCommandLineDidNotSet) {
  std::string file = (dir_ / "osmod.toml").string();
  write(file, "name = \"n7\"\nlisten = \"127.0.0.1:9000\"\njoin = [\"10.1.1.1\", \"10.1.1.2:9001\"]\n"
              "load_scope = \"cgroup\"\nspeed = 1.5\n");
  DaemonConfig c;
  c.name = "from-cli";
  ASSERT_TRUE(apply_config_file(file, {"name"}, &c).ok());
  EXPECT_EQ(c.name, "from-cli");
  EXPECT_EQ(c.listen, "127.0.0.1:9000");
  ASSERT_EQ(c.join.size(), 2u);
  EXPECT_EQ(c.load_scope, "cgroup");
  EXPECT_DOUBLE_EQ(c.speed, 1.5);

  c.secret_file = secret_;
  auto r = resolve(c);
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->listen.port, 9000);
  EXPECT_EQ(r->advertise.str(), "127.0.0.1:9000");
  EXPECT_EQ(r->join[0].str(), "10.1.1.1:7946");
  EXPECT_EQ(r->join[1].port, 9001);
}

TEST_F(ConfigTest, BalancingSettings) {
  std::string file = (dir_ / "balance.toml").string();
  write(file, "balance = false\nbalance_interval_ms = 500\ndrain_grace_ms = 5000\n");
  DaemonConfig c;
  c.drain_grace_ms = 1234;  // set on the command line: the file does not override it
  ASSERT_TRUE(apply_config_file(file, {"drain_grace_ms"}, &c).ok());
  EXPECT_FALSE(c.balance);
  EXPECT_EQ(c.balance_interval_ms, 500);
  EXPECT_EQ(c.drain_grace_ms, 1234);
  c.secret_file = secret_;
  c.listen = "127.0.0.1";
  auto r = resolve(c);
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_FALSE(r->balance);
  EXPECT_EQ(r->balance_interval_ms, 500);
  EXPECT_EQ(r->drain_grace_ms, 1234);
  c.balance_interval_ms = 10;  // below the 100 ms floor
  r = resolve(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find("balance interval 10 ms"), std::string::npos) << r.error().str();
  write(file, "balance = \"no\"\n");
  auto st = apply_config_file(file, {}, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().str().find("'balance' must be true or false"), std::string::npos);
  write(file, "drain_grace_ms = -5\n");
  st = apply_config_file(file, {}, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().str().find("'drain_grace_ms' must be a number of milliseconds"), std::string::npos);
}

TEST_F(ConfigTest, UnknownKeysAndBadTypesAreErrors) {
  std::string file = (dir_ / "bad.toml").string();
  write(file, "lisen = \"x\"\n");
  DaemonConfig c;
  auto st = apply_config_file(file, {}, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().str().find("unknown key 'lisen'"), std::string::npos);
  write(file, "join = \"10.0.0.1\"\n");
  st = apply_config_file(file, {}, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().str().find("array of strings"), std::string::npos);
  write(file, "name = \n");
  st = apply_config_file(file, {}, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().str().find("bad.toml:1"), std::string::npos) << st.error().str();
}

TEST_F(ConfigTest, SecretMustBePrivateAndAKey) {
  DaemonConfig c;
  c.name = "n1";
  c.listen = "127.0.0.1";
  c.secret_file = secret_;
  ::chmod(secret_.c_str(), 0644);
  auto r = resolve(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find("readable by others"), std::string::npos);
  write(secret_, "short");
  ::chmod(secret_.c_str(), 0600);
  r = resolve(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find("exactly 32 random bytes"), std::string::npos) << r.error().str();
  // A passphrase of the right length is refused with the way to make a key.
  write(secret_, "0123456789abcdef0123456789abcdef");
  r = resolve(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find("passphrase"), std::string::npos) << r.error().str();
  EXPECT_NE(r.error().str().find("head -c 32 /dev/urandom > FILE"), std::string::npos) << r.error().str();
  EXPECT_NE(r.error().str().find(secret_), std::string::npos) << "names the file: " << r.error().str();
  write(secret_, kRandomKey);
  ASSERT_TRUE(resolve(c).ok());
  c.secret_file = (dir_ / "missing").string();
  r = resolve(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find("No such file"), std::string::npos);
}

TEST_F(ConfigTest, GossipEncryptionSwitch) {
  std::string file = (dir_ / "osmod.toml").string();
  DaemonConfig c;
  c.name = "n1";
  c.listen = "127.0.0.1";
  c.secret_file = secret_;
  EXPECT_TRUE(resolve(c)->gossip_encryption) << "on by default";
  write(file, "gossip_encryption = false\n");
  ASSERT_TRUE(apply_config_file(file, {}, &c).ok());
  EXPECT_FALSE(resolve(c)->gossip_encryption);
  write(file, "gossip_encryption = \"no\"\n");
  auto st = apply_config_file(file, {}, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().str().find("true or false"), std::string::npos) << st.error().str();
}

TEST_F(ConfigTest, BadNamesAndAddressesAreRefused) {
  DaemonConfig c;
  c.secret_file = secret_;
  c.listen = "127.0.0.1";
  c.name = "has space";
  EXPECT_FALSE(resolve(c).ok());
  c.name = "ok";
  c.listen = "127.0.0.1:99999";
  EXPECT_FALSE(resolve(c).ok());
}

}  // namespace
}  // namespace osmo::daemon
