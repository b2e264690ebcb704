// mask_control and markdown_cell: the one rule for hostile text shown to people.
#include "quorate/core/display.h"

#include <gtest/gtest.h>

namespace quorate {
namespace {

TEST(Display, ControlCharactersAreMaskedOneQuestionMarkEach) {
  EXPECT_EQ(mask_control("a\x1b[2K\x1b[1Gb\n\r\t\x07\x7f"), "a?[2K?[1Gb?????");
  EXPECT_EQ(mask_control(std::string("nul\0x", 5)), "nul?x");
  EXPECT_EQ(mask_control("csi \xc2\x9b"
                         "2J, nel \xc2\x85"),
            "csi ?2J, nel ?");  // C1 as UTF-8
  EXPECT_EQ(mask_control("caf\xc3\xa9 \xc2\xa0 \xe2\x82\xac | `x`"), "caf\xc3\xa9 \xc2\xa0 \xe2\x82\xac | `x`");
}

TEST(Display, BytesThatAreNotUtf8AreMaskedOneQuestionMarkEach) {
  EXPECT_EQ(mask_control("lone \x9b"
                         "2J"),
            "lone ?2J");                                     // an 8-bit terminal's CSI
  EXPECT_EQ(mask_control("\x80\xbf\xc0\xaf\xff"), "?????");  // continuation bytes alone, overlong '/', 0xFF
  EXPECT_EQ(mask_control("\xe0\x80\x9b"), "???");            // overlong C1 (U+001B in three bytes)
  EXPECT_EQ(mask_control("\xed\xa0\x80"), "???");            // a surrogate
  EXPECT_EQ(mask_control("\xf4\x90\x80\x80"), "????");       // past U+10FFFF
  EXPECT_EQ(mask_control("cut \xe2\x82"), "cut ??");         // a sequence cut short at the end
  EXPECT_EQ(mask_control("\xc3x\xc2\x9b"), "?x?");           // a lead byte without its continuation
  EXPECT_EQ(mask_control("\xf0\x9f\x98\x80 \xef\xbf\xbd"), "\xf0\x9f\x98\x80 \xef\xbf\xbd");  // kept
}

// "Trojan source" for reports: U+202E shows the rest of a line reversed, the isolates and marks reorder it too.
TEST(Display, BidirectionalFormattingCharactersAreMasked) {
  EXPECT_EQ(mask_control("evil\u202etxt.exe"), "evil?txt.exe");
  EXPECT_EQ(mask_control("\u202a\u202b\u202c\u202d \u2066\u2067\u2068\u2069 \u200e\u200f\u061c"), "???? ???? ???");
  EXPECT_EQ(mask_control("\u200d\u05d0\u0627"), "\u200d\u05d0\u0627");  // joiners and RTL letters themselves stay
}

TEST(Display, MarkdownCellsStayOneCellOnOneLine) {
  EXPECT_EQ(markdown_cell("a | b\nc"), "a \\| b?c");
  EXPECT_EQ(markdown_cell("back\\slash \\| `code` <b>"), "back\\\\slash \\\\\\| \\`code\\` \\<b\\>");
  EXPECT_EQ(markdown_cell("\x1b[2K"), "?[2K");
}

}  // namespace
}  // namespace quorate
