using Tdsm.Text;
using Oracle = Microsoft.ML.Tokenizers;

namespace Tdsm.Tests.Text;

/// <summary>Our BERT tokenizer against Microsoft.ML.Tokenizers' BertTokenizer (test-only oracle) on the same vocab.txt.</summary>
public class BertTokenizerTests
{
    private static readonly Lazy<Oracle.BertTokenizer> OracleTok = new(() =>
        Oracle.BertTokenizer.Create(Path.Combine(TextFixture.CacheDir, MiniLm.VocabFileName),
            new Oracle.BertOptions { LowerCaseBeforeTokenization = true, RemoveNonSpacingMarks = true, IndividuallyTokenizeCjk = true, ApplyBasicTokenization = true }));

    private static int[] OracleIds(string text) => [.. OracleTok.Value.EncodeToIds(text, addSpecialTokens: true, considerPreTokenization: true, considerNormalization: true)];

    private static string Show(BertTokenizer t, IEnumerable<int> ids) => string.Join(" ", ids.Select(t.Token));

    [Test]
    public void MatchesTheOracleOnEveryClassLabelAndDescription()
    {
        var tok = TextFixture.Tokenizer;
        var texts = TextFixture.AllClassTexts().ToList();
        Assert.That(texts, Has.Count.EqualTo(60 + 120 + 120 + 51 + 60 + 120), "every label of ntu60, ntu120, ntu120_names, pku51 and every description");
        foreach (var text in texts)
        {
            var ours = tok.Encode(text);
            var theirs = OracleIds(text);
            Assert.That(ours, Is.EqualTo(theirs), $"'{text}': ours {Show(tok, ours)} | oracle {Show(tok, theirs)}");
        }
    }

    private static readonly string[] Tricky =
    [
        "eat meal/snack",
        "put on/take off a shoe (left/right)",
        "\"Drink water\" refers to taking in water.",
        "\u201CPickup\u201D involves lifting or grasping an object with one's hands.",
        "hand-waving, high-five & thumb up!!!",
        "It's 5 o'clock; don't   stop now",
        "100% sure? yes: 3.14 / 2,000 #tag @user",
        "C# vs. F# -- e-mail@example.com",
        "\u4E2D\u6587\u5B57\u7B26 mixed \u65E5\u672C\u8A9E text",
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
        new string('a', 101) + " short",
        "UPPER Case MiXeD",
        "\u00A0non-breaking\u2003em space\u3000ideographic space",
        "control\u0007bell",
        "",
    ];

    [TestCaseSource(nameof(Tricky))]
    public void MatchesTheOracleOnTrickyStrings(string text)
    {
        var tok = TextFixture.Tokenizer;
        var ours = tok.Encode(text);
        var theirs = OracleIds(text);
        Assert.That(ours, Is.EqualTo(theirs), $"ours {Show(tok, ours)} | oracle {Show(tok, theirs)}");
    }

    // Where Microsoft.ML.Tokenizers 2.0.1 departs from Hugging Face's BasicTokenizer, the expected
    // tokens are written out from HF's rules: every non-alphanumeric ASCII character is punctuation
    // (split off, kept: '$' '+' '^' '`' '~' '_'); tab and newline are whitespace; format characters
    // (category Cf, e.g. U+200B) are dropped without splitting; a symbol outside the vocabulary
    // (emoji) is [UNK]; accents are stripped. The oracle instead drops those ASCII symbols and the
    // emoji, joins words across tab/newline, splits at U+200B and (under invariant globalization)
    // keeps precomposed accents.
    private static readonly object[] HfRules =
    [
        new object[] { "$5 ~tilde `back` ^caret_under", "$ 5 ~ til ##de ` back ` ^ care ##t _ under" },
        new object[] { "C++", "c + +" },
        new object[] { "stop\tnow\nplease", "stop now please" },
        new object[] { "zero\u200Bwidth", "zero ##wi ##dt ##h" },
        new object[] { "emoji \uD83D\uDE00 and \u00BFqu\u00E9?", "em ##oj ##i [UNK] and \u00BF que ?" },
    ];

    [TestCaseSource(nameof(HfRules))]
    public void FollowsHuggingFaceWhereTheOracleDeparts(string text, string expected)
    {
        var tok = TextFixture.Tokenizer;
        Assert.That(Show(tok, tok.Encode(text)), Is.EqualTo("[CLS] " + expected + " [SEP]"));
        Assert.That(OracleIds(text), Is.Not.EqualTo(tok.Encode(text)), "still a known difference of the oracle (else move the case to the oracle list)");
    }

    [Test]
    public void StripsAccentsOfPrecomposedCharacters()
    {
        // string.Normalize is a no-op under invariant globalization, so the oracle gets the text
        // already decomposed (base letter + combining mark) and removes the marks itself; we get
        // the precomposed form and must reach the same ids through our decomposition table.
        var tok = TextFixture.Tokenizer;
        (string Composed, string Decomposed)[] cases =
        [
            ("na\u00EFve caf\u00E9", "nai\u0308ve cafe\u0301"),
            ("\u00C9COLE \u00D1and\u00FA", "E\u0301COLE N\u0303andu\u0301"),
            ("cr\u00E8me br\u00FBl\u00E9e", "cre\u0300me bru\u0302le\u0301e"),
            ("\u0160koda \u017Dlut\u00FD", "S\u030Ckoda Z\u030Cluty\u0301"),
        ];
        foreach (var (composed, decomposed) in cases)
        {
            var want = OracleIds(decomposed);
            Assert.That(tok.Encode(composed), Is.EqualTo(want), composed);
            Assert.That(tok.Encode(decomposed), Is.EqualTo(want), decomposed);
            Assert.That(want, Does.Not.Contain(tok.UnkId), "the stripped words are in the vocabulary");
        }
        Assert.That(BertTokenizer.StripAccents("\u212B\u00C5\u1E69"), Is.EqualTo("AAs"), "singleton and two-mark decompositions");
    }

    [Test]
    public void TruncatesKeepingClsAndSep()
    {
        var tok = TextFixture.Tokenizer;
        var full = tok.Encode("one two three four five six seven eight nine ten");
        Assert.That(full, Has.Length.EqualTo(12));
        var cut = tok.Encode("one two three four five six seven eight nine ten", 6);
        Assert.That(cut, Is.EqualTo(new[] { full[0], full[1], full[2], full[3], full[4], tok.SepId }));
        Assert.That(tok.Encode(""), Is.EqualTo(new[] { tok.ClsId, tok.SepId }));
        Assert.That(tok.Token(tok.PadId), Is.EqualTo("[PAD]"));
    }

    [Test]
    public void VocabularyErrorsNameTheLine()
    {
        var e = Assert.Throws<InvalidDataException>(() => BertTokenizer.FromVocabText("[PAD]\n[UNK]\n[CLS]\n[SEP]\nword\nword\n", "v.txt"));
        Assert.That(e!.Message, Does.Contain("v.txt").And.Contain("line 6"));
        var e2 = Assert.Throws<InvalidDataException>(() => BertTokenizer.FromVocabText("[PAD]\n[UNK]\n[SEP]\n", "w.txt"));
        Assert.That(e2!.Message, Does.Contain("w.txt").And.Contain("[CLS]"));
    }
}
