namespace Tdsm.Data;

/// <summary>Text from an input file quoted in an error message.</summary>
public static class ErrorText
{
    /// <summary>At most 80 characters of <paramref name="text"/>, control characters shown as '?': a binary file given
    /// by mistake must not fill the terminal.</summary>
    public static string Excerpt(string text)
    {
        var clean = new string(text.Take(81).Select(ch => char.IsControl(ch) ? '?' : ch).ToArray());
        return clean.Length > 80 ? clean[..80] + "..." : clean;
    }
}
