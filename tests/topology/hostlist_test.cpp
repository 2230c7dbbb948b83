#include "haein/topology/hostlist.hpp"

#include <gtest/gtest.h>

#include "haein/common/error.hpp"

namespace haein::topology {
namespace {

using Names = std::vector<std::string>;

TEST(Hostlist, ExpandsRangesListsAndPadding) {
  EXPECT_EQ(expand_hostlist("dev[0-2,9]"), (Names{"dev0", "dev1", "dev2", "dev9"}));
  EXPECT_EQ(expand_hostlist("b200-[001-003]"), (Names{"b200-001", "b200-002", "b200-003"}));
  EXPECT_EQ(expand_hostlist("n[9-11]"), (Names{"n9", "n10", "n11"}));
  EXPECT_EQ(expand_hostlist("a,b[1-2],c"), (Names{"a", "b1", "b2", "c"}));
  EXPECT_EQ(expand_hostlist("r[1-2]-n[01-02]"), (Names{"r1-n01", "r1-n02", "r2-n01", "r2-n02"}));
  EXPECT_EQ(expand_hostlist("plain"), (Names{"plain"}));
  EXPECT_EQ(expand_hostlist("b200-[001-128]").size(), 128u);
}

TEST(Hostlist, RejectsBadRanges) {
  for (const char* bad : {"n[5-2]", "n[", "n[]", "n[1-x]", "n]1[", "a,,b", "n[1-2"}) {
    EXPECT_THROW(expand_hostlist(bad), InvalidArgument) << bad;
  }
  try {
    expand_hostlist("n[5-2]");
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("descending"), std::string::npos) << error.what();
  }
  EXPECT_THROW(expand_hostlist("n[0-99999999]"), InvalidArgument);
}

TEST(Hostlist, HugeNumbersAndProductsAreBoundedNotOverflowed) {
  // n[9223372036854775807] once looped until memory ran out; these return at once.
  for (const char* bad :
       {"n[9223372036854775807]", "n[0-9223372036854775807]", "n[1-999999999999999]",
        "n[1-999999999999999,1-999999999999999]", "a[1-1000]b[1-1000]c[1-1000]d[1-1000]",
        "n[1-999999],m[1-999999],o[1-999999],p[1-999999]"}) {
    try {
      expand_hostlist(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const InvalidArgument& error) {
      const std::string what = error.what();
      EXPECT_TRUE(what.find("out of range") != std::string::npos ||
                  what.find("expands to more than 1000000 names") != std::string::npos)
          << what;
    }
  }
  EXPECT_EQ(expand_hostlist("n[999999999999999]"), (Names{"n999999999999999"}));
}

TEST(Hostlist, CompressRoundTripsInOrder) {
  const std::vector<Names> cases = {
      expand_hostlist("b200-[001-128]"),
      {"n9", "n10", "n11", "x", "n1"},
      {"dev0", "dev1", "dev2", "dev9", "gpu07", "gpu08", "gpu100"},
      {"r1-n01", "r1-n02", "r2-n01"},
      {"a.example", "b2c", "node"},
  };
  for (const Names& names : cases) {
    EXPECT_EQ(expand_hostlist(compress_hostlist(names)), names) << compress_hostlist(names);
  }
  EXPECT_EQ(compress_hostlist(expand_hostlist("b200-[001-128]")), "b200-[001-128]");
  EXPECT_EQ(compress_hostlist({"dev0", "dev1", "dev2", "dev9"}), "dev[0-2,9]");
}

// Names of two numbers (rack, tray) fold on both when every rack has the same trays.
TEST(Hostlist, CompressFoldsAnEarlierNumber) {
  const std::vector<Names> cases = {
      expand_hostlist("r[001-003,005]t[01-18]"),
      expand_hostlist("r[1-2]t[1-3],r3t[1-2],r[4-5]t[1-3]"),
      expand_hostlist("su[01-16]-leaf-r[0-7]"),
      {"r1t1", "r1t2", "r2t1", "r2t2", "x", "r3t1"},
  };
  for (const Names& names : cases) {
    EXPECT_EQ(expand_hostlist(compress_hostlist(names)), names) << compress_hostlist(names);
  }
  EXPECT_EQ(compress_hostlist(expand_hostlist("r[001-003,005]t[01-18]")), "r[001-003,005]t[01-18]");
  EXPECT_EQ(compress_hostlist(expand_hostlist("r[1-2]t[1-3],r3t[1-2],r[4-5]t[1-3]")),
            "r[1-2]t[1-3],r3t[1-2],r[4-5]t[1-3]");
  EXPECT_EQ(compress_hostlist({"r1t1", "r1t2", "r2t1", "r2t2", "x", "r3t1"}),
            "r[1-2]t[1-2],x,r3t1");
  EXPECT_EQ(compress_hostlist({"su01-leaf-r0", "su02-leaf-r0", "su03-leaf-r0"}),
            "su[01-03]-leaf-r0");
  EXPECT_EQ(compress_hostlist({"r1-n01", "r1-n02", "r2-n01"}), "r1-n[01-02],r2-n01");
  // One range per name, as Slurm reads them.
  const Names racks = expand_hostlist("r[1-2]t[1-3]");
  EXPECT_EQ(compress_hostlist(racks, HostlistRanges::kOne), "r1t[1-3],r2t[1-3]");
  EXPECT_EQ(compress_hostlist({"su01-leaf-r0", "su02-leaf-r0"}, HostlistRanges::kOne),
            "su[01-02]-leaf-r0");
}

TEST(CpuList, ParsesAndFormats) {
  const std::vector<int> cpus = parse_cpu_list("0-3,8,10-11");
  EXPECT_EQ(cpus, (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(format_cpu_list(cpus), "0-3,8,10-11");
  EXPECT_EQ(format_cpu_list(parse_cpu_list("0-55,112-167")), "0-55,112-167");
  EXPECT_THROW(parse_cpu_list("3-1"), InvalidArgument);
  EXPECT_THROW(parse_cpu_list("a"), InvalidArgument);
}

// A few bytes must not ask for gigabytes: CPU numbers and list lengths are capped.
TEST(CpuList, HugeRangesAreRefusedByName) {
  EXPECT_EQ(parse_cpu_list("0-65535").size(), 65536u);
  const auto message = [](const std::string& text) {
    try {
      parse_cpu_list(text);
    } catch (const InvalidArgument& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("0-9999999").find("CPU 9999999 is past 65535"), std::string::npos);
  EXPECT_NE(message("0-65535,0-1").find("more than 65536 CPUs"), std::string::npos);
}

}  // namespace
}  // namespace haein::topology
