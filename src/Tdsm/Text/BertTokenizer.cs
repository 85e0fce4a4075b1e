using System.Globalization;
using System.Text;

namespace Tdsm.Text;

/// <summary>
/// The uncased BERT tokenizer of all-MiniLM-L6-v2, written to match Hugging Face's
/// <c>BertTokenizer(do_lower_case=True)</c>: basic tokenisation (drop control characters, map
/// whitespace to spaces, put spaces around CJK ideographs, lower-case, strip accents, split on
/// whitespace and punctuation), then greedy longest-match-first WordPiece with the "##" prefix,
/// words of more than 100 characters becoming [UNK]. Sequences are wrapped in [CLS] ... [SEP].
/// Accents are stripped with a built-in decomposition table (<see cref="AccentTable"/>) because
/// <see cref="string.Normalize()"/> does nothing under invariant globalization.
/// Known difference from Python: lower-casing is .NET's per-character invariant mapping (no
/// context-dependent final sigma), except that U+0130 (capital I with dot) lowers to "i" as in Python.
/// </summary>
public sealed class BertTokenizer
{
    private const int MaxInputCharsPerWord = 100;
    private readonly Dictionary<string, int> _vocab;
    private readonly string[] _tokens;

    /// <summary>Vocabulary size (30522 for MiniLM).</summary>
    public int VocabSize => _tokens.Length;

    /// <summary>Id of [CLS] (sequence start).</summary>
    public int ClsId { get; }

    /// <summary>Id of [SEP] (sequence end).</summary>
    public int SepId { get; }

    /// <summary>Id of [PAD].</summary>
    public int PadId { get; }

    /// <summary>Id of [UNK].</summary>
    public int UnkId { get; }

    /// <summary>Builds the tokenizer from vocabulary lines (line index = token id).</summary>
    /// <param name="tokens">One token per entry, in id order.</param>
    /// <param name="source">Names the vocabulary in error messages.</param>
    /// <exception cref="InvalidDataException">A token repeats or a special token is missing.</exception>
    public BertTokenizer(IReadOnlyList<string> tokens, string source = "vocabulary")
    {
        _tokens = [.. tokens];
        _vocab = new Dictionary<string, int>(_tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < _tokens.Length; i++)
            if (!_vocab.TryAdd(_tokens[i], i))
                throw new InvalidDataException($"{source}: line {i + 1}: token '{_tokens[i]}' already appears on line {_vocab[_tokens[i]] + 1}");
        ClsId = Special(source, "[CLS]");
        SepId = Special(source, "[SEP]");
        PadId = Special(source, "[PAD]");
        UnkId = Special(source, "[UNK]");
    }

    private int Special(string source, string token) => _vocab.TryGetValue(token, out int id) ? id
        : throw new InvalidDataException($"{source}: special token {token} is missing from the vocabulary");

    /// <summary>Reads a vocab.txt (one token per line, UTF-8).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The vocabulary is malformed.</exception>
    public static BertTokenizer FromVocabFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: vocabulary file not found", path);
        return FromVocabText(File.ReadAllText(path, Encoding.UTF8), path);
    }

    /// <summary>Builds the tokenizer from vocab.txt contents. Lines end in \n, \r\n or \r (the
    /// package's file uses \r\n), as Python's text mode reads them.</summary>
    /// <exception cref="InvalidDataException">The vocabulary is malformed.</exception>
    public static BertTokenizer FromVocabText(string text, string source)
    {
        var lines = new List<string>();
        using var reader = new StringReader(text);
        while (reader.ReadLine() is { } line) lines.Add(line);
        return new BertTokenizer(lines, source);
    }

    /// <summary>The token string of <paramref name="id"/>.</summary>
    public string Token(int id) => _tokens[id];

    /// <summary>[CLS] + WordPiece ids of <paramref name="text"/> + [SEP], truncated (keeping [CLS]
    /// and [SEP]) to at most <paramref name="maxLength"/> ids, as HF's <c>truncation=True</c> does.</summary>
    public int[] Encode(string text, int maxLength = 512)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        var ids = WordPieceIds(text);
        int keep = Math.Min(ids.Count, maxLength - 2);
        var r = new int[keep + 2];
        r[0] = ClsId;
        for (int i = 0; i < keep; i++) r[i + 1] = ids[i];
        r[keep + 1] = SepId;
        return r;
    }

    /// <summary>WordPiece ids of <paramref name="text"/>, without special tokens or truncation.</summary>
    public List<int> WordPieceIds(string text)
    {
        var ids = new List<int>();
        foreach (var word in BasicTokenize(text)) AppendWordPieces(word, ids);
        return ids;
    }

    /// <summary>Basic tokenisation: the lower-cased, accent-stripped words and punctuation marks.</summary>
    public static List<string> BasicTokenize(string text)
    {
        // 1. Clean: drop NUL, U+FFFD and control characters; whitespace becomes ' '; CJK ideographs get spaces around them.
        var clean = new StringBuilder(text.Length + 8);
        foreach (var r in text.EnumerateRunes())
        {
            int cp = r.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(r)) continue;
            if (IsWhitespace(r)) clean.Append(' ');
            else if (IsCjk(cp)) clean.Append(' ').Append(r.ToString()).Append(' ');
            else clean.Append(r.ToString());
        }
        // 2. Whitespace split, lower-case + strip accents per word, split on punctuation.
        var result = new List<string>();
        foreach (var word in clean.ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var norm = StripAccents(Lower(word));
            var cur = new StringBuilder();
            foreach (var r in norm.EnumerateRunes())
            {
                if (IsPunctuation(r))
                {
                    if (cur.Length > 0) { result.Add(cur.ToString()); cur.Clear(); }
                    result.Add(r.ToString());
                }
                else cur.Append(r.ToString());
            }
            if (cur.Length > 0) result.Add(cur.ToString());
        }
        return result;
    }

    private void AppendWordPieces(string word, List<int> ids)
    {
        if (CodePointCount(word) > MaxInputCharsPerWord) { ids.Add(UnkId); return; }
        int start = 0;
        int firstNew = ids.Count;
        while (start < word.Length)
        {
            int end = word.Length;
            int found = -1;
            while (start < end)
            {
                var piece = start > 0 ? "##" + word[start..end] : word[start..end];
                if (_vocab.TryGetValue(piece, out int id)) { found = id; break; }
                end--;
            }
            if (found < 0)
            {
                // No piece matches: the whole word is unknown (HF drops the pieces found so far).
                ids.RemoveRange(firstNew, ids.Count - firstNew);
                ids.Add(UnkId);
                return;
            }
            ids.Add(found);
            start = end;
        }
    }

    private static int CodePointCount(string s)
    {
        int n = 0;
        foreach (var _ in s.EnumerateRunes()) n++;
        return n;
    }

    private static string Lower(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var r in s.EnumerateRunes())
        {
            if (r.Value == 0x130) sb.Append("i\u0307"); // Python: 'İ'.lower() == 'i̇' (the dot is then stripped)
            else sb.Append(Rune.ToLowerInvariant(r).ToString());
        }
        return sb.ToString();
    }

    /// <summary>NFD, then drop the non-spacing marks (HF <c>_run_strip_accents</c>).</summary>
    internal static string StripAccents(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var r in s.EnumerateRunes())
        {
            int cp = r.Value;
            if (cp is >= 0xAC00 and <= 0xD7A3) AppendHangulJamo(sb, cp);
            else if (AccentTable.StrippedDecomposition.TryGetValue(cp, out var d)) sb.Append(d);
            else if (Rune.GetUnicodeCategory(r) != UnicodeCategory.NonSpacingMark) sb.Append(r.ToString());
        }
        return sb.ToString();
    }

    // The Unicode algorithmic decomposition of a precomposed Hangul syllable into L V (T) jamo.
    private static void AppendHangulJamo(StringBuilder sb, int cp)
    {
        int s = cp - 0xAC00;
        sb.Append((char)(0x1100 + s / (21 * 28)));
        sb.Append((char)(0x1161 + s % (21 * 28) / 28));
        if (s % 28 != 0) sb.Append((char)(0x11A7 + s % 28));
    }

    private static bool IsWhitespace(Rune r) =>
        r.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(r) == UnicodeCategory.SpaceSeparator;

    private static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        // Python's unicodedata categories starting with "C": Cc, Cf, Cs, Co, Cn.
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;
    }

    private static bool IsPunctuation(Rune r)
    {
        int cp = r.Value;
        // All non-letter/number ASCII counts as punctuation in BERT (e.g. '$', '^', '`'), beyond category P*.
        if (cp is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    private static bool IsCjk(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
