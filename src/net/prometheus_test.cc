#include "mc/net/prometheus.h"

#include <gtest/gtest.h>

namespace mc::net {
namespace {

TEST(PrometheusTextTest, FamilyHasHelpAndTypeLinesThenItsSamples) {
  PrometheusText out;
  out.Family("mc_gpus", "GPU slots by state.", "gauge");
  out.Sample("mc_gpus", {{"state", "free"}}, 3);
  out.Sample("mc_gpus", {{"state", "used"}, {"host", "a"}}, uint64_t{1});
  out.Sample("mc_total", -2);
  EXPECT_EQ(out.text(),
            "# HELP mc_gpus GPU slots by state.\n"
            "# TYPE mc_gpus gauge\n"
            "mc_gpus{state=\"free\"} 3\n"
            "mc_gpus{state=\"used\",host=\"a\"} 1\n"
            "mc_total -2\n");
}

TEST(PrometheusTextTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  PrometheusText out;
  out.Sample("m", {{"source", "a\\b\"c\nd"}}, 1);
  EXPECT_EQ(out.text(), "m{source=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(PrometheusTextTest, NumbersAreExactOrShortestRoundTrip) {
  PrometheusText out;
  out.Sample("a", uint64_t{18446744073709551615u});
  out.Sample("b", 1234567.875);
  out.Sample("c", 0.1);
  out.Sample("d", 2.0);
  EXPECT_EQ(out.text(), "a 18446744073709551615\nb 1234567.875\nc 0.1\nd 2\n");
}

TEST(PrometheusTextTest, ReplyIsTheVersionedTextFormat) {
  PrometheusText out;
  out.Sample("m", 1);
  HttpResponse res;
  out.Reply(res);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.headers.Get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(res.body, "m 1\n");
}

}  // namespace
}  // namespace mc::net
