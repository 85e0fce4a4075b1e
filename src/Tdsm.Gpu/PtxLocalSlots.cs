using System.Text;
using System.Text.RegularExpressions;

namespace Tdsm.Gpu;

/// <summary>
/// Turns the one-word local-memory slots through which ILGPU passes inline-asm operands into PTX registers.
/// ILGPU's PTX backend gives every operand of a <c>CudaAsm.Emit</c> its own <c>.local .b8 __local_depotN[4]</c> and moves
/// the value through it: <c>st.local</c> before the asm, <c>ld.local</c> into a fresh register for it, and the same after
/// it for each output. ptxas usually lifts these slots into registers again, but not always: with any <c>cp.async</c> in a
/// kernel, ptxas 11.8 kept every slot of the mma and ldmatrix operands in local memory (a 1,656-byte stack frame, 248
/// LDL and 552 STL), and the H100's driver left 8-48 bytes of local memory in the tensor-core kernels of the first visit
/// (bench/RESULTS.md). This pass does the lifting in the PTX text, so the result no longer depends on the assembler.
/// <para>
/// A depot is promoted only when it is a scalar variable in the strict sense: declared once, 4 or 8 bytes, its address
/// taken by exactly one <c>mov.b64 %rdX, __local_depotN;</c> whose register is defined nowhere else, and every other use
/// of that register a plain <c>st.local.T [%rdX], v;</c> or <c>ld.local.T d, [%rdX];</c> of the depot's size (no
/// offsets, vectors or address arithmetic). Then each store is a <c>mov</c> into the depot's register and each load a
/// <c>mov</c> out of it (predicate guards kept), which is exactly the same per-thread variable. Anything else (local
/// arrays, addresses passed to cvta or to called functions) stays as ILGPU wrote it.
/// </para>
/// </summary>
public static partial class PtxLocalSlots
{
    // .local .align 4 .b8 __local_depot12[4];
    [GeneratedRegex(@"^\s*\.local\s+\.align\s+\d+\s+\.b8\s+(__local_depot\d+)\[(\d+)\];\s*$")]
    private static partial Regex Declaration();

    // mov.b64 %rd760, __local_depot751;   (ILGPU writes mov.b64; mov.u64 accepted too)
    [GeneratedRegex(@"^\s*mov\.[bu]64\s+(%rd\d+),\s*(__local_depot\d+);\s*$")]
    private static partial Regex AddressOf();

    // [@%p1 ]st.local.f32 [%rd760], %f901;   [@!%p1 ]ld.local.b32 %r13057, [%rd764];
    [GeneratedRegex(@"^(\s*)(@!?%\w+\s+)?st\.local\.([busf])(8|16|32|64)\s+\[(%rd\d+)\],\s*([^;]+);\s*$")]
    private static partial Regex Store();

    [GeneratedRegex(@"^(\s*)(@!?%\w+\s+)?ld\.local\.([busf])(8|16|32|64)\s+(%\w+),\s*\[(%rd\d+)\];\s*$")]
    private static partial Regex Load();

    [GeneratedRegex(@"%rd\d+")]
    private static partial Regex AddressRegister();

    [GeneratedRegex(@"__local_depot\d+")]
    private static partial Regex DepotName();

    /// <summary>The rewritten PTX and how many depots became registers (0: the text is returned unchanged).</summary>
    public static (string Ptx, int Promoted) Promote(string ptx)
    {
        string[] lines = ptx.Split('\n');
        // Depot name -> (declaration line, size); names declared twice (or outside a function) are left alone.
        var declared = new Dictionary<string, (int Line, int Bytes)>();
        var twice = new HashSet<string>();
        // Every line each depot name and each %rd register occurs on.
        var depotUses = new Dictionary<string, List<int>>();
        var registerUses = new Dictionary<string, List<int>>();
        int depth = 0; // brace depth: only depots declared inside a function body can become registers
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            int before = depth;
            foreach (char ch in line) depth += ch == '{' ? 1 : ch == '}' ? -1 : 0;
            if (!line.Contains('%') && !line.Contains("__local_depot")) continue;
            var decl = Declaration().Match(line);
            if (decl.Success)
            {
                if (before == 0) twice.Add(decl.Groups[1].Value); // module scope: leave it
                if (!declared.TryAdd(decl.Groups[1].Value, (i, int.Parse(decl.Groups[2].Value)))) twice.Add(decl.Groups[1].Value);
                continue;
            }
            foreach (Match m in DepotName().Matches(line)) Add(depotUses, m.Value, i);
            foreach (Match m in AddressRegister().Matches(line)) Add(registerUses, m.Value, i);
        }

        var replaced = new Dictionary<int, string>();
        int promoted = 0;
        foreach (var (depot, (declLine, bytes)) in declared)
        {
            if (twice.Contains(depot) || bytes is not (4 or 8)) continue;
            if (!depotUses.TryGetValue(depot, out var uses) || uses.Count != 1) continue;
            var address = AddressOf().Match(lines[uses[0]]);
            if (!address.Success || address.Groups[2].Value != depot) continue;
            string reg = address.Groups[1].Value;
            var regLines = registerUses[reg];
            // The register's every line but its definition must be a whole-slot access; a second definition, an offset,
            // or any other instruction mentioning it disqualifies the depot.
            var rewrites = new List<(int Line, string Text)>();
            bool ok = regLines.Distinct().Count() == regLines.Count; // one mention per line
            string slot = $"%tdsm_slot{promoted}";
            foreach (int li in regLines)
            {
                if (!ok) break;
                if (li == uses[0]) continue;
                var st = Store().Match(lines[li]);
                if (st.Success && st.Groups[5].Value == reg && int.Parse(st.Groups[4].Value) == bytes * 8)
                {
                    rewrites.Add((li, $"{st.Groups[1].Value}{st.Groups[2].Value}mov.b{bytes * 8}\t{slot}, {st.Groups[6].Value.Trim()};"));
                    continue;
                }
                var ld = Load().Match(lines[li]);
                if (ld.Success && ld.Groups[6].Value == reg && int.Parse(ld.Groups[4].Value) == bytes * 8)
                {
                    rewrites.Add((li, $"{ld.Groups[1].Value}{ld.Groups[2].Value}mov.b{bytes * 8}\t{ld.Groups[5].Value}, {slot};"));
                    continue;
                }
                ok = false;
            }
            if (!ok) continue;
            foreach (var (li, text) in rewrites) replaced[li] = text;
            string indent = lines[declLine][..(lines[declLine].Length - lines[declLine].TrimStart().Length)];
            replaced[declLine] = $"{indent}.reg .b{bytes * 8} {slot};";
            replaced[uses[0]] = ""; // the address is no longer taken
            promoted++;
        }
        if (promoted == 0) return (ptx, 0);
        var sb = new StringBuilder(ptx.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            if (replaced.TryGetValue(i, out var text))
            {
                if (text.Length == 0) continue;
                sb.Append(text);
            }
            else sb.Append(lines[i]);
            if (i < lines.Length - 1) sb.Append('\n');
        }
        return (sb.ToString(), promoted);
    }

    private static void Add(Dictionary<string, List<int>> map, string key, int line)
    {
        if (!map.TryGetValue(key, out var list)) map[key] = list = [];
        list.Add(line);
    }
}
