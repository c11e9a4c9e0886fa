#include "mc/hub/model_ref.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>

namespace mc::hub {
namespace {

struct AcceptCase {
  std::string input;
  RepoType type;
  std::string repo;
  std::optional<std::string> revision;
  std::optional<std::string> file;
};

constexpr RepoType kM = RepoType::kModel;
constexpr RepoType kD = RepoType::kDataset;
constexpr RepoType kS = RepoType::kSpace;
const std::nullopt_t none = std::nullopt;

const AcceptCase kAccepted[] = {
    // Bare ids.
    {"org/name", kM, "org/name", none, none},
    {"gpt2", kM, "gpt2", none, none},
    {"Qwen/Qwen3-0.6B", kM, "Qwen/Qwen3-0.6B", none, none},
    {"  org/name \n", kM, "org/name", none, none},
    {"\torg/name\r\n", kM, "org/name", none, none},
    {"org/name/", kM, "org/name", none, none},
    // '@' and ':' revisions.
    {"org/name@main", kM, "org/name", "main", none},
    {"org/name@v1.0", kM, "org/name", "v1.0", none},
    {"org/name@refs/pr/1", kM, "org/name", "refs/pr/1", none},
    {"org/name@refs%2Fpr%2F1", kM, "org/name", "refs/pr/1", none},
    {"org/name@feature/with/slash", kM, "org/name", "feature/with/slash", none},
    {"org/name@607a30d783dfa663caf39e06633721c8d4cfcd7e", kM, "org/name",
     "607a30d783dfa663caf39e06633721c8d4cfcd7e", none},
    {"gpt2@main", kM, "gpt2", "main", none},
    {"org/name:main", kM, "org/name", "main", none},
    {"org/name@a@b", kM, "org/name", "a@b", none},
    // Hosts and schemes.
    {"https://huggingface.co/org/name", kM, "org/name", none, none},
    {"http://huggingface.co/org/name", kM, "org/name", none, none},
    {"huggingface.co/org/name", kM, "org/name", none, none},
    {"hf.co/org/name", kM, "org/name", none, none},
    {"https://hf.co/org/name", kM, "org/name", none, none},
    {"https://www.huggingface.co/org/name", kM, "org/name", none, none},
    {"www.hf.co/org/name", kM, "org/name", none, none},
    {"HTTPS://HuggingFace.CO/org/name", kM, "org/name", none, none},
    {"https://huggingface.co/org/name/", kM, "org/name", none, none},
    {"https://huggingface.co/gpt2", kM, "gpt2", none, none},
    {"https://huggingface.co/org/name?library=transformers", kM, "org/name", none, none},
    {"https://huggingface.co/org/name#model-card", kM, "org/name", none, none},
    {"https://huggingface.co/org/name/?x=1#y", kM, "org/name", none, none},
    {"https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct:main", kM, "Qwen/Qwen2.5-0.5B-Instruct",
     "main", none},
    {"https://huggingface.co/org/name@refs%2Fpr%2F3", kM, "org/name", "refs/pr/3", none},
    // tree / blob / resolve.
    {"https://huggingface.co/org/name/tree/main", kM, "org/name", "main", none},
    {"https://huggingface.co/org/name/tree/main/", kM, "org/name", "main", none},
    {"https://huggingface.co/org/name/tree/main/onnx", kM, "org/name", "main", none},
    {"https://huggingface.co/org/name/tree/main/a/b/c", kM, "org/name", "main", none},
    {"https://huggingface.co/org/name/tree/refs%2Fpr%2F1", kM, "org/name", "refs/pr/1", none},
    {"https://huggingface.co/org/name/tree/refs/pr/1", kM, "org/name", "refs/pr/1", none},
    {"https://huggingface.co/org/name/tree/refs/pr/1/onnx", kM, "org/name", "refs/pr/1", none},
    {"https://huggingface.co/datasets/org/name/tree/refs%2Fconvert%2Fparquet", kD, "org/name",
     "refs/convert/parquet", none},
    {"https://huggingface.co/org/name/tree/feature%2Fx", kM, "org/name", "feature/x", none},
    {"https://huggingface.co/org/name/blob/main/config.json", kM, "org/name", "main",
     "config.json"},
    {"https://huggingface.co/org/name/blob/main/original/params.json", kM, "org/name", "main",
     "original/params.json"},
    {"https://huggingface.co/org/name/resolve/main/model.safetensors?download=true", kM, "org/name",
     "main", "model.safetensors"},
    {"https://huggingface.co/org/name/resolve/refs%2Fpr%2F1/onnx/model.onnx", kM, "org/name",
     "refs/pr/1", "onnx/model.onnx"},
    {"https://huggingface.co/org/name/blob/refs/pr/2/a.bin", kM, "org/name", "refs/pr/2", "a.bin"},
    {"https://huggingface.co/org/name/blob/main/my%20model%2Bv2.onnx", kM, "org/name", "main",
     "my model+v2.onnx"},
    {"https://huggingface.co/org/name/blob/main/%C3%BC.txt", kM, "org/name", "main",
     "\xC3\xBC.txt"},
    {"org/name/tree/v2", kM, "org/name", "v2", none},
    {"org/name/resolve/main/x.json", kM, "org/name", "main", "x.json"},
    // One-part repos followed by a path keyword.
    {"https://huggingface.co/gpt2/tree/main", kM, "gpt2", "main", none},
    {"https://huggingface.co/gpt2/blob/main/config.json", kM, "gpt2", "main", "config.json"},
    {"https://huggingface.co/org/tree", kM, "org/tree", none, none},
    {"https://huggingface.co/org/tree/tree/main", kM, "org/tree", "main", none},
    // Repo types.
    {"datasets/org/name", kD, "org/name", none, none},
    {"datasets/squad", kD, "squad", none, none},
    {"spaces/org/app", kS, "org/app", none, none},
    {"models/org/name", kM, "org/name", none, none},
    {"https://huggingface.co/datasets/org/name", kD, "org/name", none, none},
    {"https://huggingface.co/datasets/org/name/blob/main/data/train.parquet", kD, "org/name",
     "main", "data/train.parquet"},
    {"https://huggingface.co/spaces/org/app/tree/main", kS, "org/app", "main", none},
    {"hf.co/datasets/org/name@v1", kD, "org/name", "v1", none},
};

TEST(ParseModelRefTest, AcceptsEveryFormUsersPaste) {
  for (const AcceptCase& c : kAccepted) {
    SCOPED_TRACE(c.input);
    StatusOr<ModelRef> ref = ParseModelRef(c.input);
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    EXPECT_EQ(ref->repo.type(), c.type);
    EXPECT_EQ(ref->repo.id(), c.repo);
    ASSERT_EQ(ref->revision.has_value(), c.revision.has_value());
    if (c.revision) {
      EXPECT_EQ(ref->revision->str(), *c.revision);
    }
    ASSERT_EQ(ref->file.has_value(), c.file.has_value());
    if (c.file) {
      EXPECT_EQ(ref->file->str(), *c.file);
    }
  }
}

TEST(ParseModelRefTest, FormatThenParseGivesTheSameRef) {
  for (const AcceptCase& c : kAccepted) {
    SCOPED_TRACE(c.input);
    ModelRef ref = ParseModelRef(c.input).value();
    std::string text = FormatModelRef(ref);
    StatusOr<ModelRef> again = ParseModelRef(text);
    ASSERT_TRUE(again.ok()) << text << ": " << again.status().ToString();
    EXPECT_TRUE(*again == ref) << text;
  }
}

const char* const kRejected[] = {
    "",
    "   ",
    "\n",
    "org/name/extra",
    "a/../b",
    "--x",
    "org/--x",
    "org//name",
    "org/name@",
    "org/name:",
    "org/name@..",
    "org/name@refs/../x",
    "org/name@main\nevil",
    "org/name@has space",
    "org/name@%zz",
    "org/name@%2",
    "org/name@%00",
    "org/name@refs%2F..%2Fx",
    "@main",
    ":main",
    "org name",
    "org/na%6De",
    "https://github.com/org/name",
    "github.com/org/name",
    "https://huggingface.co.evil.com/org/name",
    "https://evil.com/huggingface.co/org/name",
    "https://huggingface.co@evil.com/org/name",
    "https://evil.com@huggingface.co/org/name",
    "https://huggingface.co:8080/org/name",
    "huggingface.co:443/org/name",
    "hf://org/name",
    "ftp://huggingface.co/org/name",
    "file:///etc/passwd",
    "javascript://huggingface.co/org/name",
    "https://huggingface.co/",
    "https://huggingface.co",
    "huggingface.co",
    "hf.co/",
    "huggingface.co/huggingface.co",
    "hf.co@main",
    "datasets/hf.co",
    "https://huggingface.co/api/models/org/name",
    "https://huggingface.co/api/models/org/name/revision/main",
    "/api/models/org/name",
    "api/models",
    "https://huggingface.co/docs/transformers",
    "https://huggingface.co/settings/tokens",
    "spaces",
    "datasets",
    "datasets/",
    "https://huggingface.co/datasets",
    "datasets/org/name/extra",
    "org/name/tree",
    "org/name/tree/",
    "org/name/tree/refs",
    "org/name/tree/refs/pr",
    "org/name/blob/main",
    "org/name/resolve/main/",
    "org/name/blob/main/../../etc/passwd",
    "org/name/blob/main/%2E%2E/x",
    "org/name/blob/main/a%00b",
    "org/name/blob/main/a%5Cb",
    "org/name/tree/main/..",
    "org/name/commits/main",
    "org/name/discussions/1",
    "/home/user/models/x",
    "./models/x",
    "../x",
    "~/models/x",
    "org\\name",
    "org/name\x01",
};

TEST(ParseModelRefTest, RejectsWhatIsNotARepositoryWithInvalidArgument) {
  for (const char* input : kRejected) {
    SCOPED_TRACE(input);
    StatusOr<ModelRef> ref = ParseModelRef(input);
    ASSERT_FALSE(ref.ok()) << FormatModelRef(*ref);
    EXPECT_EQ(ref.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ref.status().message().find("invalid model reference"), std::string::npos)
        << ref.status().message();
  }
}

TEST(ParseModelRefTest, ErrorShowsTheInputAndWhatWasExpected) {
  Status s = ParseModelRef("https://github.com/org/name").status();
  EXPECT_NE(s.message().find("'https://github.com/org/name'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("huggingface.co"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("expected 'org/name'"), std::string::npos) << s.message();
}

TEST(ParseModelRefTest, ErrorSaysWhenAnotherHostWasPasted) {
  for (const char* input : {"github.com/org/name", "http://127.0.0.1:8765/org/name"}) {
    Status s = ParseModelRef(input).status();
    EXPECT_NE(s.message().find("huggingface.co or hf.co"), std::string::npos) << s.message();
  }
  Status port = ParseModelRef("https://huggingface.co:8443/org/name").status();
  EXPECT_NE(port.message().find("port"), std::string::npos) << port.message();
}

TEST(ParseModelRefTest, ErrorEscapesControlCharactersOfTheInput) {
  Status s = ParseModelRef(std::string("org/na\x1b[31mme")).status();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().find('\x1b'), std::string::npos);
  EXPECT_NE(s.message().find("\\x1b"), std::string::npos) << s.message();
}

TEST(ParseModelRefTest, ErrorNamesTheRuleTheRevisionBroke) {
  Status s = ParseModelRef("org/name@refs/../x").status();
  EXPECT_NE(s.message().find("invalid revision"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("'..'"), std::string::npos) << s.message();
}

TEST(ParseModelRefTest, RejectsEmbeddedNul) {
  EXPECT_FALSE(ParseModelRef(std::string("org/name\0x", 10)).ok());
  EXPECT_FALSE(ParseModelRef(std::string("org/name@ma\0in", 14)).ok());
}

TEST(ParseModelRefTest, RejectsOversizedInputWithoutScanningIt) {
  std::string huge = "org/name@" + std::string(100000, 'a');
  Status s = ParseModelRef(huge).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_LT(s.message().size(), 400u);
}

TEST(ParseModelRefTest, DefaultTypeAppliesOnlyWithoutPrefix) {
  EXPECT_EQ(ParseModelRef("org/name", RepoType::kDataset)->repo.type(), RepoType::kDataset);
  EXPECT_EQ(ParseModelRef("spaces/org/name", RepoType::kDataset)->repo.type(), RepoType::kSpace);
  EXPECT_EQ(ParseModelRef("models/org/name", RepoType::kDataset)->repo.type(), RepoType::kModel);
}

TEST(ParseModelRefTest, TreeRevisionIsOneSegmentUnlessRefs) {
  ModelRef ref = ParseModelRef("org/name/tree/feature/x").value();
  EXPECT_EQ(ref.revision->str(), "feature");  // "x" is a sub-folder
  ref = ParseModelRef("org/name/tree/refs/convert/parquet/default").value();
  EXPECT_EQ(ref.revision->str(), "refs/convert/parquet");
}

TEST(ParseModelRefTest, AtRevisionTakesTheWholeRest) {
  ModelRef ref = ParseModelRef("org/name@feature/tree/x").value();
  EXPECT_EQ(ref.revision->str(), "feature/tree/x");
  EXPECT_FALSE(ref.file.has_value());
}

// Random pastes built from the pieces that matter to the grammar: every result is either an
// InvalidArgument error or a ref that formats and parses back to itself.
TEST(ParseModelRefTest, RandomInputIsRejectedCleanlyOrRoundTrips) {
  const std::vector<std::string> pieces = {"org",
                                           "name",
                                           "gpt2",
                                           "/",
                                           "@",
                                           ":",
                                           "%2F",
                                           "%",
                                           "%zz",
                                           "?x=1",
                                           "#f",
                                           "..",
                                           ".",
                                           "-",
                                           "--",
                                           " ",
                                           "\n",
                                           "\x00",
                                           "refs",
                                           "pr",
                                           "1",
                                           "main",
                                           "tree",
                                           "blob",
                                           "resolve",
                                           "datasets",
                                           "spaces",
                                           "https://",
                                           "http:",
                                           "hf.co",
                                           "huggingface.co",
                                           "github.com",
                                           "~",
                                           "a.b"};
  std::mt19937 rng(20261126);
  int accepted = 0;
  for (int n = 0; n < 20000; ++n) {
    std::string input;
    int len = 1 + static_cast<int>(rng() % 9);
    for (int k = 0; k < len; ++k) input += pieces[rng() % pieces.size()];
    StatusOr<ModelRef> ref = ParseModelRef(input);
    if (!ref.ok()) {
      ASSERT_EQ(ref.status().code(), StatusCode::kInvalidArgument) << input;
      continue;
    }
    ++accepted;
    StatusOr<ModelRef> again = ParseModelRef(FormatModelRef(*ref));
    ASSERT_TRUE(again.ok()) << input << " -> " << FormatModelRef(*ref);
    ASSERT_TRUE(*again == *ref) << input << " -> " << FormatModelRef(*ref);
  }
  EXPECT_GT(accepted, 100);  // the generator does reach the accepting paths
}

TEST(FormatModelRefTest, WritesCanonicalForms) {
  EXPECT_EQ(FormatModelRef(ParseModelRef("https://hf.co/org/name/").value()), "org/name");
  EXPECT_EQ(FormatModelRef(ParseModelRef("https://huggingface.co/org/name:main").value()),
            "org/name@main");
  EXPECT_EQ(FormatModelRef(ParseModelRef("org/name/tree/refs%2Fpr%2F1").value()),
            "org/name@refs/pr/1");
  EXPECT_EQ(FormatModelRef(ParseModelRef("https://huggingface.co/datasets/o/n/tree/v1").value()),
            "datasets/o/n@v1");
  EXPECT_EQ(FormatModelRef(ParseModelRef("o/n/resolve/refs%2Fpr%2F1/a/b c.bin").value()),
            "o/n/blob/refs%2Fpr%2F1/a/b%20c.bin");
}

TEST(FormatModelRefTest, FileWithoutRevisionUsesMain) {
  ModelRef ref{RepoId::Parse("o/n").value(), std::nullopt, RepoFilePath::Parse("x.json").value()};
  EXPECT_EQ(FormatModelRef(ref), "o/n/blob/main/x.json");
}

TEST(FormatModelRefTest, EncodesPercentInRevisionSoItRoundTrips) {
  ModelRef ref{RepoId::Parse("o/n").value(), Revision::Parse("50%off").value(), std::nullopt};
  EXPECT_EQ(FormatModelRef(ref), "o/n@50%25off");
  EXPECT_TRUE(ParseModelRef(FormatModelRef(ref)).value() == ref);
}

}  // namespace
}  // namespace mc::hub
