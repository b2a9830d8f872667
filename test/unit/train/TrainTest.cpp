//===- TrainTest.cpp - LR schedule, sampling, option checks ----------------===//

#include "runtime/train/Generate.h"
#include "runtime/train/LossCurve.h"
#include "runtime/train/LrSchedule.h"
#include "runtime/train/Trainer.h"

#include <cmath>
#include <gtest/gtest.h>

using namespace megatron::train;

namespace {

// Values computed by hand from Megatron-LM's OptimizerParamScheduler.get_lr().
TEST(LrSchedule, WarmupThenLinearDecay) {
  LrSchedule s{1e-3, 1e-4, 10, 110, DecayStyle::Linear};
  EXPECT_DOUBLE_EQ(s.at(0), 0.0);
  EXPECT_DOUBLE_EQ(s.at(5), 5e-4);
  EXPECT_DOUBLE_EQ(s.at(10), 1e-3);
  EXPECT_DOUBLE_EQ(s.at(60), 1e-4 + 0.5 * 9e-4);
  EXPECT_DOUBLE_EQ(s.at(110), 1e-4);
  EXPECT_DOUBLE_EQ(s.at(500), 1e-4);
}

TEST(LrSchedule, Cosine) {
  LrSchedule s{2e-3, 0.0, 0, 100, DecayStyle::Cosine};
  EXPECT_DOUBLE_EQ(s.at(0), 2e-3);
  EXPECT_NEAR(s.at(50), 1e-3, 1e-15);
  EXPECT_NEAR(s.at(25), 1e-3 * (std::cos(M_PI / 4) + 1), 1e-15);
  EXPECT_NEAR(s.at(100), 0.0, 1e-18);
}

TEST(LrSchedule, ConstantIgnoresDecay) {
  LrSchedule s{3e-4, 0.0, 4, 10, DecayStyle::Constant};
  EXPECT_DOUBLE_EQ(s.at(2), 1.5e-4);
  EXPECT_DOUBLE_EQ(s.at(1000), 3e-4);
  EXPECT_EQ(parseDecayStyle("cosine"), DecayStyle::Cosine);
  EXPECT_FALSE(parseDecayStyle("exponential"));
}

TEST(Sampling, GreedyTakesTheArgmax) {
  float logits[] = {0.1f, 2.0f, -1.0f, 1.9f};
  EXPECT_EQ(sampleToken(logits, 4, {true}, 0), 1);
  // The vocabulary limit keeps padded rows out, even when they would win.
  float padded[] = {0.1f, 0.2f, 9.0f};
  EXPECT_EQ(sampleToken(padded, 2, {true}, 0), 1);
}

TEST(Sampling, TopKAndTopPRestrictTheDraw) {
  float logits[] = {3.0f, 2.9f, 0.0f, -1.0f, -2.0f};
  SamplingOptions topK{false, 1.0, 2, 1.0, 7};
  SamplingOptions topP{false, 1.0, 0, 0.5, 7};
  for (uint64_t draw = 0; draw < 200; ++draw) {
    EXPECT_LT(sampleToken(logits, 5, topK, draw), 2);
    EXPECT_LT(sampleToken(logits, 5, topP, draw), 2); // the two top tokens hold over half the mass
  }
  // Deterministic for (seed, draw), and not constant across draws.
  SamplingOptions all{false, 1.0, 0, 1.0, 3};
  EXPECT_EQ(sampleToken(logits, 5, all, 11), sampleToken(logits, 5, all, 11));
  int different = 0;
  for (uint64_t draw = 0; draw < 50; ++draw)
    different += sampleToken(logits, 5, all, draw) != sampleToken(logits, 5, all, 0);
  EXPECT_GT(different, 0);
}

TEST(Options, EveryProblemNamesItsFlag) {
  TrainOptions o;
  o.plan = "x.plan";
  o.trainIters = 0;
  o.schedule.lr = -1;
  o.topP = 0;
  std::vector<std::string> problems = validate(o);
  auto mentions = [&](const char *flag) {
    for (const std::string &p : problems)
      if (p.find(flag) != std::string::npos)
        return true;
    return false;
  };
  EXPECT_TRUE(mentions("--train-iters"));
  EXPECT_TRUE(mentions("--lr"));
  EXPECT_TRUE(mentions("--top-p"));
  o.trainIters = 0;
  o.schedule.lr = 1e-3;
  o.topP = 1;
  o.load = "ckpt";
  o.generate = 2;
  EXPECT_TRUE(validate(o).empty()) << "generating from a checkpoint needs no training";
}

TEST(LossCurve, RendersEverySeries) {
  LossCurve curve;
  curve.train = {{1, 5.0}, {2, 4.0}, {3, 3.5}};
  curve.validation = {{3, 3.6}};
  curve.floor = 2.1;
  curve.title = "tiny";
  std::string svg = renderSvg(curve);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("entropy floor 2.100"), std::string::npos);
  EXPECT_NE(svg.find("<circle"), std::string::npos);
  EXPECT_NE(svg.find("<path d=\"M"), std::string::npos);
}

} // namespace
