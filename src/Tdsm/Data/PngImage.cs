using System.IO.Compression;

namespace Tdsm.Data;

/// <summary>An 8-bit RGB raster with a minimal PNG encoder (zlib via the BCL; no image library).</summary>
public sealed class PngImage
{
    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Pixels, row-major, 3 bytes (R, G, B) each.</summary>
    public byte[] Rgb { get; }

    /// <summary>A white image.</summary>
    public PngImage(int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        Width = width; Height = height;
        Rgb = new byte[width * height * 3];
        Array.Fill(Rgb, (byte)255);
    }

    /// <summary>Sets one pixel (ignored outside the image).</summary>
    public void Set(int x, int y, (byte R, byte G, byte B) c)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height) return;
        int o = (y * Width + x) * 3;
        Rgb[o] = c.R; Rgb[o + 1] = c.G; Rgb[o + 2] = c.B;
    }

    /// <summary>A filled disc of radius <paramref name="r"/>.</summary>
    public void Disc(double cx, double cy, double r, (byte, byte, byte) c)
    {
        for (int y = (int)Math.Floor(cy - r); y <= (int)Math.Ceiling(cy + r); y++)
            for (int x = (int)Math.Floor(cx - r); x <= (int)Math.Ceiling(cx + r); x++)
                if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) Set(x, y, c);
    }

    /// <summary>A line of the given thickness (stamped discs).</summary>
    public void Line(double x0, double y0, double x1, double y1, double thickness, (byte, byte, byte) c)
    {
        int steps = (int)Math.Ceiling(Math.Max(Math.Abs(x1 - x0), Math.Abs(y1 - y0))) + 1;
        for (int i = 0; i <= steps; i++)
        {
            double f = (double)i / steps;
            Disc(x0 + f * (x1 - x0), y0 + f * (y1 - y0), thickness / 2, c);
        }
    }

    /// <summary>The PNG file bytes (colour type 2, bit depth 8, filter 0 on every row).</summary>
    public byte[] Encode()
    {
        using var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        WriteBE(ihdr, 0, (uint)Width); WriteBE(ihdr, 4, (uint)Height);
        ihdr[8] = 8; ihdr[9] = 2; // bit depth 8, RGB
        Chunk(ms, "IHDR", ihdr);
        using (var raw = new MemoryStream())
        {
            using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
                for (int y = 0; y < Height; y++)
                {
                    z.WriteByte(0);
                    z.Write(Rgb, y * Width * 3, Width * 3);
                }
            Chunk(ms, "IDAT", raw.ToArray());
        }
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>Writes the PNG file atomically.</summary>
    public void Save(string path)
    {
        var bytes = Encode();
        Tdsm.Formats.AtomicFile.Write(path, s => s.Write(bytes));
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        var head = new byte[8];
        WriteBE(head, 0, (uint)data.Length);
        for (int i = 0; i < 4; i++) head[4 + i] = (byte)type[i];
        s.Write(head);
        s.Write(data);
        uint crc = Crc32(head.AsSpan(4, 4), 0xFFFFFFFFu);
        crc = Crc32(data, crc) ^ 0xFFFFFFFFu;
        var c = new byte[4];
        WriteBE(c, 0, crc);
        s.Write(c);
    }

    private static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    /// <summary>PNG/zlib CRC-32 update (pass 0xFFFFFFFF to start; xor the final value with 0xFFFFFFFF).</summary>
    internal static uint Crc32(ReadOnlySpan<byte> data, uint crc)
    {
        foreach (byte b in data) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    private static void WriteBE(byte[] b, int o, uint v)
    {
        b[o] = (byte)(v >> 24); b[o + 1] = (byte)(v >> 16); b[o + 2] = (byte)(v >> 8); b[o + 3] = (byte)v;
    }
}
