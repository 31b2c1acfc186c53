namespace ExpertBridge.Core.Traces;

/// <summary>
/// exp and log built only from IEEE-754 operations that are correctly rounded everywhere (+, -, *, /, bit
/// manipulation), so a seeded trace is bit-identical on every CPU and runtime. The platform's libm may differ in the
/// last bit between x64 and Arm or between C runtimes, and one flipped rounding changes a sampled count.
/// Accuracy: a few ulp over the whole double range, plenty for sampling.
/// </summary>
internal static class DetMath
{
    // fdlibm's split of ln 2: the high part has trailing zero bits, so n * Ln2Hi is exact for |n| < 2^11.
    private const double Ln2Hi = 6.93147180369123816490e-01;
    private const double Ln2Lo = 1.90821492927058770002e-10;
    private const double InvLn2 = 1.44269504088896338700e+00;
    private const double Sqrt2 = 1.41421356237309504880;
    private const double TwoPow54 = 18014398509481984.0;

    /// <summary>e^x.</summary>
    public static double Exp(double x)
    {
        if (double.IsNaN(x))
        {
            return x;
        }

        if (x > 709.782712893384)
        {
            return double.PositiveInfinity;
        }

        if (x < -745.1332191019412)
        {
            return 0;
        }

        // x = n ln2 + r, |r| <= ln2 / 2; e^r by its Taylor series to r^13 (error below 1e-17 relative).
        var n = Math.Round(x * InvLn2);
        var r = (x - (n * Ln2Hi)) - (n * Ln2Lo);
        const double c13 = 1.0 / 6227020800, c12 = 1.0 / 479001600, c11 = 1.0 / 39916800, c10 = 1.0 / 3628800;
        const double c9 = 1.0 / 362880, c8 = 1.0 / 40320, c7 = 1.0 / 5040, c6 = 1.0 / 720, c5 = 1.0 / 120;
        const double c4 = 1.0 / 24, c3 = 1.0 / 6, c2 = 0.5;
        var p = c13;
        p = (p * r) + c12;
        p = (p * r) + c11;
        p = (p * r) + c10;
        p = (p * r) + c9;
        p = (p * r) + c8;
        p = (p * r) + c7;
        p = (p * r) + c6;
        p = (p * r) + c5;
        p = (p * r) + c4;
        p = (p * r) + c3;
        p = (p * r) + c2;
        p = (p * r) + 1;
        p = (p * r) + 1;
        return ScaleByPowerOfTwo(p, (int)n);
    }

    /// <summary>Natural logarithm; NaN for negative input, -infinity for 0.</summary>
    public static double Log(double x)
    {
        if (double.IsNaN(x) || x < 0)
        {
            return double.NaN;
        }

        if (x == 0)
        {
            return double.NegativeInfinity;
        }

        if (double.IsPositiveInfinity(x))
        {
            return x;
        }

        var bits = BitConverter.DoubleToInt64Bits(x);
        var exponent = (int)((bits >> 52) & 0x7FF);
        if (exponent == 0)
        {
            // Subnormal: normalise first.
            bits = BitConverter.DoubleToInt64Bits(x * TwoPow54);
            exponent = (int)((bits >> 52) & 0x7FF) - 54;
        }

        exponent -= 1023;
        var m = BitConverter.Int64BitsToDouble((bits & 0x000F_FFFF_FFFF_FFFFL) | 0x3FF0_0000_0000_0000L); // [1, 2)
        if (m > Sqrt2)
        {
            m *= 0.5;
            exponent++;
        }

        // ln m = 2 atanh(f) = 2 (f + f^3/3 + f^5/5 + ...), f = (m - 1) / (m + 1), |f| <= 0.1716.
        var f = (m - 1) / (m + 1);
        var f2 = f * f;
        var s = 1.0 / 21;
        s = (s * f2) + (1.0 / 19);
        s = (s * f2) + (1.0 / 17);
        s = (s * f2) + (1.0 / 15);
        s = (s * f2) + (1.0 / 13);
        s = (s * f2) + (1.0 / 11);
        s = (s * f2) + (1.0 / 9);
        s = (s * f2) + (1.0 / 7);
        s = (s * f2) + (1.0 / 5);
        s = (s * f2) + (1.0 / 3);
        s *= f2;
        var lnM = (2 * f) + (2 * f * s);
        return (exponent * Ln2Hi) + (lnM + (exponent * Ln2Lo));
    }

    /// <summary>x^y for x > 0.</summary>
    public static double Pow(double x, double y) => Exp(y * Log(x));

    private static double ScaleByPowerOfTwo(double value, int n)
    {
        if (n > 1023)
        {
            return value * PowerOfTwo(1023) * PowerOfTwo(n - 1023);
        }

        if (n < -1022)
        {
            return value * PowerOfTwo(n + 54) * (1.0 / TwoPow54);
        }

        return value * PowerOfTwo(n);
    }

    private static double PowerOfTwo(int n) => BitConverter.Int64BitsToDouble((long)(n + 1023) << 52);
}
