namespace Tdsm.StGcn;

/// <summary>
/// The NTU RGB+D 25-joint skeleton graph with ST-GCN's spatial partitioning (max hop 1).
/// The adjacency (self loops included) is column-normalised (A D^-1) and split into K = 3
/// subsets by the hop distance to the centre joint: root (same distance as the neighbour),
/// centripetal (the neighbour is closer to the centre) and centrifugal (farther).
/// Layout: <see cref="A"/> is (K, V, V) row-major, A[k, v, w] weights joint v's message to joint w.
/// </summary>
public sealed class Graph
{
    /// <summary>NTU bone list, 1-based joint numbers as in the dataset documentation.</summary>
    public static readonly IReadOnlyList<(int A, int B)> NtuEdges1Based =
    [
        (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
        (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23), (23, 8), (24, 25), (25, 12),
    ];

    /// <summary>Joint 21 (spine at the shoulders), 0-based.</summary>
    public const int NtuCenter = 20;

    /// <summary>Joints of the NTU RGB+D skeleton (the graph's V).</summary>
    public const int NtuJoints = 25;

    /// <summary>Number of partitions (root, centripetal, centrifugal).</summary>
    public int K { get; }

    /// <summary>Number of joints.</summary>
    public int V { get; }

    /// <summary>The partitioned, normalised adjacency, (K, V, V) row-major.</summary>
    public double[] A { get; }

    private Graph(int k, int v, double[] a) { K = k; V = v; A = a; }

    /// <summary>The NTU 25-joint graph.</summary>
    public static Graph Ntu() => Spatial(NtuJoints, NtuEdges1Based, NtuCenter);

    /// <summary>Spatial partitioning with max hop 1 for any undirected edge list (1-based joints) and 0-based centre.</summary>
    public static Graph Spatial(int v, IReadOnlyList<(int A, int B)> edges1Based, int center)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(v, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(center);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(center, v);
        var adj = new bool[v, v];
        for (int i = 0; i < v; i++) adj[i, i] = true;
        foreach (var (a, b) in edges1Based)
        {
            if (a < 1 || a > v || b < 1 || b > v) throw new ArgumentException($"edge ({a},{b}) names a joint outside 1..{v}", nameof(edges1Based));
            adj[a - 1, b - 1] = true; adj[b - 1, a - 1] = true;
        }
        // Hop distance limited to max hop 1 (0 = self, 1 = neighbour, "infinity" otherwise), as the
        // official code computes it. The partition compares hop[j, centre] with hop[i, centre], so
        // joints more than one hop from the centre all count as "infinitely" far (ST-GCN's behaviour).
        var hop = new int[v, v];
        for (int i = 0; i < v; i++)
            for (int j = 0; j < v; j++) hop[i, j] = i == j ? 0 : adj[i, j] ? 1 : int.MaxValue;
        var hopC = new int[v];
        for (int j = 0; j < v; j++) hopC[j] = hop[j, center];

        // Column normalisation: norm[j, i] = adj[j, i] / (sum_j adj[j, i]).
        var colSum = new double[v];
        for (int i = 0; i < v; i++)
            for (int j = 0; j < v; j++) if (adj[j, i]) colSum[i] += 1;
        var a3 = new double[3 * v * v];
        for (int i = 0; i < v; i++)
            for (int j = 0; j < v; j++)
            {
                if (!adj[j, i]) continue;
                double norm = colSum[i] > 0 ? 1.0 / colSum[i] : 0.0;
                int k;
                if (hop[j, i] == 0) k = 0;                 // hop 0: the self links
                else if (hopC[j] >= hopC[i]) k = 1;        // hop 1: root (equal) and centripetal share a subset
                else k = 2;                                // hop 1: centrifugal
                a3[k * v * v + j * v + i] += norm;
            }
        return new Graph(3, v, a3);
    }

    /// <summary>The adjacency as float32 (the storage precision of the model).</summary>
    public float[] AsFloat32() => Array.ConvertAll(A, d => (float)d);
}
