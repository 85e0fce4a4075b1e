using Tdsm.Kernels;

namespace Tdsm.Gpu.Tests;

/// <summary>The kernels' float32 exp, run as plain C# on the CPU against float64 Math.Exp.</summary>
public class FloatMathTests
{
    [Test]
    public void ExpIsWithinFourUlpOverTheWholeRange()
    {
        double worst = 0;
        float worstAt = 0;
        var rng = new Random(7);
        for (int i = 0; i <= 400_000; i++)
        {
            float x = i < 200_000 ? -87.3f + i * (176.0f / 200_000) : (float)(rng.NextDouble() * 20 - 10);
            double want = Math.Exp(x);
            double rel = Math.Abs(FloatMath.Exp(x) - want) / want;
            if (double.IsNaN(rel) || rel > worst) { worst = rel; worstAt = x; } // once NaN, worst stays NaN (NaN > x is false)
        }
        TestContext.Out.WriteLine($"max relative error {worst:e3} at x = {worstAt}");
        Assert.That(worst, Is.Not.NaN.And.LessThan(4 * 5.96e-8), "4 ulp of float32");
    }

    [Test]
    public void ExpNonPositiveIsExpBitForBit()
    {
        var rng = new Random(11);
        for (int i = 0; i <= 200_000; i++)
        {
            float x = i < 100_000 ? -100f + i * (100f / 100_000) : -(float)(rng.NextDouble() * 90);
            Assert.That(BitConverter.SingleToInt32Bits(FloatMath.ExpNonPositive(x)), Is.EqualTo(BitConverter.SingleToInt32Bits(FloatMath.Exp(x))), $"x = {x:R}");
        }
        Assert.That(FloatMath.ExpNonPositive(float.NegativeInfinity), Is.EqualTo(0f));
        Assert.That(FloatMath.ExpNonPositive(-87.33f), Is.EqualTo(FloatMath.Exp(-87.33f)));
        Assert.That(FloatMath.ExpNonPositive(0f), Is.EqualTo(1f));
    }

    [Test]
    public void ExpLimitsAndExactPoints()
    {
        Assert.Multiple(() =>
        {
            Assert.That(FloatMath.Exp(0f), Is.EqualTo(1f));
            Assert.That(FloatMath.Exp(100f), Is.EqualTo(float.PositiveInfinity));
            Assert.That(FloatMath.Exp(-100f), Is.EqualTo(0f));
            Assert.That(FloatMath.Exp(float.NegativeInfinity), Is.EqualTo(0f));
            Assert.That(FloatMath.Sigmoid(0f), Is.EqualTo(0.5f));
            Assert.That(FloatMath.Sigmoid(-200f), Is.EqualTo(0f));
            Assert.That(FloatMath.Sigmoid(200f), Is.EqualTo(1f));
        });
    }
}
