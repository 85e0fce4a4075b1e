using Tdsm.Tensors;

namespace Tdsm.Tests;

/// <summary>The shared non-finite scan: the first NaN or infinity wherever it falls (vector body or scalar tail).</summary>
public class FiniteTests
{
    [Test]
    public void FindsTheFirstNonFiniteValueAnywhere()
    {
        Assert.That(Finite.IndexOfNonFinite([]), Is.EqualTo(-1));
        var finite = new[] { 0f, -0f, float.MaxValue, float.MinValue, float.Epsilon, 1e-40f, 3f };
        Assert.That(Finite.IndexOfNonFinite(finite), Is.EqualTo(-1));
        foreach (int n in new[] { 1, 7, 8, 9, 16, 37 })
            for (int at = 0; at < n; at++)
                foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
                {
                    var v = Enumerable.Range(0, n).Select(i => (float)i - 3.5f).ToArray();
                    v[at] = bad;
                    if (at + 2 < n) v[at + 2] = float.NaN; // a later one must not be reported first
                    Assert.That(Finite.IndexOfNonFinite(v), Is.EqualTo(at), $"n {n}, at {at}, {bad}");
                }
    }
}
