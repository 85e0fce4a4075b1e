namespace Tdsm.Text;

/// <summary>
/// The exact (erf) GELU of BERT: gelu(x) = x/2 · (1 + erf(x/√2)). .NET has no erf, so erfc is
/// the Chebyshev fit of Numerical Recipes (§6.2, "erfcc"), fractional error below 1.2e-7
/// everywhere, evaluated in double; that is below float32 resolution for GELU's output.
/// </summary>
public static class Gelu
{
    /// <summary>The complementary error function erfc(x) = 1 - erf(x).</summary>
    public static double Erfc(double x)
    {
        double z = Math.Abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2.0 - r;
    }

    /// <summary>The error function erf(x).</summary>
    public static double Erf(double x) => 1.0 - Erfc(x);

    /// <summary>gelu(x) = x/2 · (1 + erf(x/√2)), written as x/2 · erfc(-x/√2) so that the
    /// negative tail keeps its relative precision.</summary>
    public static double Forward(double x) => 0.5 * x * Erfc(-x * 0.70710678118654752440);

    /// <summary>Applies GELU in place to <paramref name="x"/>.</summary>
    public static void ForwardInPlace(Span<float> x)
    {
        for (int i = 0; i < x.Length; i++) x[i] = (float)Forward(x[i]);
    }
}
