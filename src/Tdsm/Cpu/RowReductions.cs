namespace Tdsm.Cpu;

/// <summary>
/// Per-row float32 reductions whose result must not depend on the vector width: each row is a scalar sum in column
/// order (as a plain loop gives it), four rows at a time so that their chains of dependent adds overlap. Used by the
/// attention softmax (a vector-summed variant moved a fixture check) and the LN-modulate backward.
/// </summary>
internal static class RowReductions
{
    /// <summary>sums[i] = Σ_j p[i·pitch + j] over j in [0, n), each a scalar sum in j order, for rows [0, rows): four rows interleaved.</summary>
    public static unsafe void Sums(float* p, int pitch, int rows, int n, float* sums)
    {
        int i = 0;
        for (; i + 4 <= rows; i += 4)
        {
            float* r0 = p + (long)i * pitch, r1 = r0 + pitch, r2 = r1 + pitch, r3 = r2 + pitch;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int j = 0; j < n; j++) { s0 += r0[j]; s1 += r1[j]; s2 += r2[j]; s3 += r3[j]; }
            sums[i] = s0; sums[i + 1] = s1; sums[i + 2] = s2; sums[i + 3] = s3;
        }
        for (; i < rows; i++)
        {
            float* r = p + (long)i * pitch;
            float sum = 0;
            for (int j = 0; j < n; j++) sum += r[j];
            sums[i] = sum;
        }
    }

    /// <summary>dots[i] = Σ_j a[i·aPitch + j]·b[i·bPitch + j] over j in [0, n) (a product, then a sum, in j order), rows [0, rows):
    /// four rows interleaved.</summary>
    public static unsafe void Dots(float* a, int aPitch, float* b, int bPitch, int rows, int n, float* dots)
    {
        int i = 0;
        for (; i + 4 <= rows; i += 4)
        {
            float* a0 = a + (long)i * aPitch, a1 = a0 + aPitch, a2 = a1 + aPitch, a3 = a2 + aPitch;
            float* b0 = b + (long)i * bPitch, b1 = b0 + bPitch, b2 = b1 + bPitch, b3 = b2 + bPitch;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int j = 0; j < n; j++) { s0 += a0[j] * b0[j]; s1 += a1[j] * b1[j]; s2 += a2[j] * b2[j]; s3 += a3[j] * b3[j]; }
            dots[i] = s0; dots[i + 1] = s1; dots[i + 2] = s2; dots[i + 3] = s3;
        }
        for (; i < rows; i++)
        {
            float* ar = a + (long)i * aPitch, br = b + (long)i * bPitch;
            float dot = 0;
            for (int j = 0; j < n; j++) dot += ar[j] * br[j];
            dots[i] = dot;
        }
    }
}
