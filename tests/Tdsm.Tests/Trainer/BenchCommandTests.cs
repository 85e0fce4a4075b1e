using Tdsm.Trainer;

namespace Tdsm.Tests.Trainer;

/// <summary>The end-to-end `bench` command.</summary>
public class BenchCommandTests
{
    /// <summary>The DiT bench's --profile: the training step's and the inference call's tables.</summary>
    [Test]
    public void ProfilesTrainingAndInference()
    {
        var stdout = new StringWriter();
        int rc = Cli.Run(["bench", "--config", "small", "--backend", "cpu", "--batch", "2", "--steps", "1", "--warmup", "0",
            "--infer-samples", "1", "--infer-classes", "2", "--profile", "1"], stdout, new StringWriter());
        string s = stdout.ToString();
        Assert.That(rc, Is.EqualTo(0), s);
        Assert.That(s, Does.Contain("train step profile (1 queued steps, per step)").And.Contain("inference profile (one Score call)"));
        Assert.That(s, Does.Match(@"JointAttentionBackward 4x36x128 +4 "), "4 blocks, 2B = 4 rows, 35 text tokens + 1");
        // One Score call: 1 sample x 2 classes = 2 rows; the skeleton-stream q/k/v of 4 blocks for each of 3 noises;
        // the text stream's (2 x 35 = 70 rows) of blocks 1-2 for each noise, plus block 0's once, as a class constant; in the last
        // block no text keys and values (qkv_c's rows H..3H fold into its skeleton row's attention), which it runs alone.
        Assert.That(s, Does.Match(@"Linear 2x128->384 +12 "));
        Assert.That(s, Does.Match(@"Linear 70x128->384 +7 "));
        Assert.That(s, Does.Not.Match(@"Linear 70x128->256 "));
        Assert.That(s, Does.Match(@"JointAttentionSkeletonRowFromText 2x36x128 +3 ").And.Match(@"JointAttention 2x36x128 +9 "));
        // Forward-only blocks run the MLP (fc1, its GELU, fc2) as one op, text stream of blocks 0-2 for 3 noises; the training
        // step keeps the three apart (the backward needs fc1's output and the GELU's).
        string inference = s[s.IndexOf("inference profile", StringComparison.Ordinal)..];
        Assert.That(inference, Does.Match(@"Mlp 70x128->512->128 +9 ").And.Not.Contain("GeluTanh").And.Not.Contain("LinearGelu"));
        Assert.That(s[..s.IndexOf("inference profile", StringComparison.Ordinal)], Does.Contain("GeluTanh").And.Not.Contain("Mlp "));
    }
}
