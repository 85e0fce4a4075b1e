using Tdsm.Tensors;
using Tdsm.Data;
using Tdsm.Formats;

namespace Tdsm.Tests.Data;

/// <summary>Class lists, every shipped label split, SMIE splits and SynSE feature folders.</summary>
public class LoaderTests : TempDirTest
{
    private static string Cl(string f) => TestPaths.Shared("data/class_lists/" + f);

    [Test]
    public void ShippedClassListsLoad()
    {
        var t60 = ClassTexts.Load(Cl("ntu60.csv"), Cl("ntu60_llm.txt"));
        var t120 = ClassTexts.Load(Cl("ntu120.csv"), Cl("ntu120_llm.txt"));
        Assert.That((t60.Count, t120.Count), Is.EqualTo((60, 120)));
        Assert.That(t60.Labels[0], Is.EqualTo("fist and move the hand up to the head then look up"));
        Assert.That(t60.Labels[59], Is.EqualTo("move the foot forward alternately and repeatedly with the leg to keep apart from other person"));
        Assert.That(t120.Descriptions[0], Does.StartWith("\"Drink water\" refers to"));
        Assert.That(t120.Labels[119], Is.EqualTo("both of the two people face to each other and reach out the open/fist/two finger hand in front of them to make a hand gestures"));
        var pku = ClassList.ReadCsv(Cl("pku51.csv"));
        Assert.That((pku.Count, pku.FirstIndex, pku.Names[0], pku.Names[50]), Is.EqualTo((51, 0, "bow", "writing")));
        var names = ClassList.ReadCsv(Cl("ntu120_names.csv"));
        Assert.That((names.Count, names.FirstIndex, names.Names[0], names.Names[119]),
            Is.EqualTo((120, 1, "drink water", "finger-guessing game (playing rock-paper-scissors)")));
    }

    [TestCase("ntu60", 5, 60)]
    [TestCase("ntu60", 12, 60)]
    [TestCase("ntu60", 20, 60)]
    [TestCase("ntu60", 30, 60)]
    [TestCase("ntu120", 10, 120)]
    [TestCase("ntu120", 24, 120)]
    [TestCase("ntu120", 40, 120)]
    [TestCase("ntu120", 60, 120)]
    public void EveryShippedSplitLoadsAndPartitionsTheClasses(string ds, int unseen, int classes)
    {
        var s = LabelSplit.Load(TestPaths.Shared("data/label_splits/" + ds), unseen, classes);
        Assert.That(s.Unseen, Has.Length.EqualTo(unseen));
        Assert.That(s.Seen.Concat(s.Unseen).Order(), Is.EqualTo(Enumerable.Range(0, classes)));
    }

    [Test]
    public void SynseSplitFilesAgreeWithTheSmieJson()
    {
        var smie = LabelSplit.ReadSmieSplits(TestPaths.Shared("data/label_splits/smie_random_splits.json"));
        Assert.That(smie.Keys, Does.Contain("split_1").And.Contain("synse_unseen_24"));
        Assert.That(smie["split_1"], Is.EqualTo(new[] { 4, 19, 31, 47, 51 }));
        // Two independent sources of the SynSE unseen lists must agree.
        Assert.That(LabelSplit.ReadIds(TestPaths.Shared("data/label_splits/ntu60/ru5.npy")).Order(), Is.EqualTo(smie["synse_unseen_5"].Order()));
        Assert.That(LabelSplit.ReadIds(TestPaths.Shared("data/label_splits/ntu60/ru12.npy")).Order(), Is.EqualTo(smie["synse_unseen_12"].Order()));
        Assert.That(LabelSplit.ReadIds(TestPaths.Shared("data/label_splits/ntu120/ru10.npy")).Order(), Is.EqualTo(smie["synse_unseen_10"].Order()));
        Assert.That(LabelSplit.ReadIds(TestPaths.Shared("data/label_splits/ntu120/ru24.npy")).Order(), Is.EqualTo(smie["synse_unseen_24"].Order()));
        foreach (var (name, ids) in smie)
        {
            int n = name is "split_1" or "split_2" or "split_3" or "synse_unseen_5" or "synse_unseen_12" ? 60 : name.StartsWith("split_", StringComparison.Ordinal) && name[^1] is '7' or '8' or '9' ? 51 : 120;
            Assert.DoesNotThrow(() => LabelSplit.FromUnseen(ids, n, name), name);
        }
    }

    [Test]
    public void SplitAndClassListDisagreementIsAClearError()
    {
        // NTU-120's split used with the NTU-60 class list.
        var d120 = TestPaths.Shared("data/label_splits/ntu120");
        var s120 = new LabelSplit(LabelSplit.ReadIds(Path.Combine(d120, "rs110.npy")), LabelSplit.ReadIds(Path.Combine(d120, "ru10.npy")));
        var e = Assert.Throws<DataFormatException>(() => s120.Validate(60, "ntu120 ru10/rs110 vs ntu60.csv"))!;
        Assert.That(e.Message, Does.StartWith("ntu120 ru10/rs110 vs ntu60.csv: ").And.Contain("is outside the class list's 0..59 (60 classes)"));
        Assert.Throws<Tdsm.Formats.TensorFormatException>(() => LabelSplit.Load(d120, 60, 60), "rs0.npy does not exist");
        var e2 = Assert.Throws<DataFormatException>(() => new LabelSplit([0, 1, 2], [2, 3]).Validate(4, "mine"))!;
        Assert.That(e2.Message, Does.Contain("mine: class id 2 appears twice"));
        var e3 = Assert.Throws<DataFormatException>(() => new LabelSplit([0, 1], [3]).Validate(4, "mine"))!;
        Assert.That(e3.Message, Does.Contain("cover 3 classes but the class list has 4"));
        // Description count differing from the label list.
        File.WriteAllText(Path.Combine(Dir, "d.txt"), "one\ntwo\n");
        var e4 = Assert.Throws<DataFormatException>(() => ClassTexts.Load(Cl("ntu60.csv"), Path.Combine(Dir, "d.txt")))!;
        Assert.That(e4.Message, Does.Contain("has 2 descriptions but").And.Contain("lists 60 classes"));
        File.WriteAllText(Path.Combine(Dir, "c.csv"), "idx,label\n1,a\n3,b\n");
        var e5 = Assert.Throws<DataFormatException>(() => ClassList.ReadCsv(Path.Combine(Dir, "c.csv")))!;
        Assert.That(e5.Message, Does.Contain("c.csv:3: expected class index 2, got 3"));
        // CSV quoting around a label is not part of it; a blank line inside a description file is an error.
        File.WriteAllText(Path.Combine(Dir, "q.csv"), "0,\"kick, then jump\"\n1,\"say \"\"hi\"\"\"\n2,plain\n");
        Assert.That(ClassList.ReadCsv(Path.Combine(Dir, "q.csv")).Names, Is.EqualTo(new[] { "kick, then jump", "say \"hi\"", "plain" }));
        File.WriteAllText(Path.Combine(Dir, "b.txt"), "one\n\ntwo\n");
        var e6 = Assert.Throws<DataFormatException>(() => ClassList.ReadLines(Path.Combine(Dir, "b.txt")))!;
        Assert.That(e6.Message, Does.Contain("b.txt:2: blank line"));
        // A binary file given as a class list: a short, printable excerpt in the message.
        var binary = Enumerable.Range(0, 5000).Select(i => (byte)(i * 7 % 256)).ToArray();
        binary[0] = (byte)'x';
        File.WriteAllBytes(Path.Combine(Dir, "bin.csv"), binary);
        var e7 = Assert.Throws<DataFormatException>(() => ClassList.ReadCsv(Path.Combine(Dir, "bin.csv")))!;
        Assert.That(e7.Message.Length, Is.LessThan(Path.Combine(Dir, "bin.csv").Length + 200));
        Assert.That(e7.Message, Has.None.Matches<char>(char.IsControl));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void SynseFolderRoundTripsAndValidates(bool withG)
    {
        var split = SyntheticActions.Splits[8];
        LabeledFeatures Make(int[] classes, int n, int seed)
        {
            var rng = new Xoshiro256((ulong)seed);
            var x = Enumerable.Range(0, n * 7).Select(_ => (float)rng.Normal()).ToArray();
            return new LabeledFeatures(x, 7, Enumerable.Range(0, n).Select(i => classes[i % classes.Length]).ToArray());
        }
        var f = new SynseFeatures(Make(split.Seen, 30, 1), Make(split.Unseen, 11, 2), withG ? Make(Enumerable.Range(0, 48).ToArray(), 13, 3) : null);
        f.Save(Dir);
        Assert.That(File.Exists(Path.Combine(Dir, "gtest.npy")), Is.EqualTo(withG));
        var g = SynseFeatures.Load(Dir);
        Assert.That(g.Train.Features, Is.EqualTo(f.Train.Features));
        Assert.That(g.ZTest.Labels, Is.EqualTo(f.ZTest.Labels));
        Assert.That(g.GTest?.Labels, Is.EqualTo(f.GTest?.Labels));
        Assert.That(Npy.Read(Path.Combine(Dir, "train_label.npy")).DType, Is.EqualTo(DType.I64));
        Assert.DoesNotThrow(() => g.Validate(split, Dir));
        Assert.Throws<DataFormatException>(() => g.Validate(SyntheticActions.Splits[12], Dir));
        // A feature that is not a number.
        var bad = (float[])f.Train.Features.Clone();
        bad[2 * 7 + 5] = float.NaN;
        Npy.Write(Path.Combine(Dir, "train.npy"), [30, 7], bad);
        var en = Assert.Throws<TensorFormatException>(() => SynseFeatures.Load(Dir))!;
        Assert.That(en.Message, Does.Contain("train.npy").And.Contain("row 2, column 5 is NaN"));
        Npy.Write(Path.Combine(Dir, "train.npy"), [30, 7], f.Train.Features);
        // A class id beyond int, and features with no channels.
        var ids = f.Train.Labels.Select(v => (long)v).ToArray(); ids[4] = 1L << 40;
        Npy.Write(Path.Combine(Dir, "train_label.npy"), [30], ids);
        Assert.That(Assert.Throws<TensorFormatException>(() => SynseFeatures.Load(Dir))!.Message, Does.Contain("train_label.npy").And.Contain("class id 1099511627776 at row 4"));
        Npy.Write(Path.Combine(Dir, "train_label.npy"), [30], f.Train.Labels.Select(v => (long)v).ToArray());
        Npy.Write(Path.Combine(Dir, "split.npy"), [2], new long[] { 3, -1 });
        Assert.That(Assert.Throws<TensorFormatException>(() => LabelSplit.ReadIds(Path.Combine(Dir, "split.npy")))!.Message, Does.Contain("entry 1 is -1"));
        Npy.Write(Path.Combine(Dir, "ztest.npy"), [11, 0], Array.Empty<float>());
        Assert.That(Assert.Throws<TensorFormatException>(() => SynseFeatures.Load(Dir))!.Message, Does.Contain("ztest.npy").And.Contain("no feature channels"));
        Npy.Write(Path.Combine(Dir, "ztest.npy"), [11, 7], f.ZTest.Features);
        // Labels that do not match the feature rows.
        Npy.Write(Path.Combine(Dir, "z_label.npy"), [3], new long[] { 1, 2, 3 });
        var e = Assert.Throws<TensorFormatException>(() => SynseFeatures.Load(Dir))!;
        Assert.That(e.Message, Does.Contain("3 labels for 11 feature rows"));
        File.Delete(Path.Combine(Dir, "ztest.npy"));
        Assert.That(Assert.Throws<TensorFormatException>(() => SynseFeatures.Load(Dir))!.Message, Does.Contain("ztest.npy: file not found"));
    }

    [Test]
    public void LabeledFeaturesSelectRowsWithTheirLabels()
    {
        // Row i holds the values 10i, 10i + 1, 10i + 2 and label i % 3.
        var f = new LabeledFeatures([.. Enumerable.Range(0, 15).Select(v => 10f * (v / 3) + v % 3)], 3, [0, 1, 2, 0, 1]);
        var r = f.Rows([4, 0]);
        Assert.That(r.Features, Is.EqualTo(new float[] { 40, 41, 42, 0, 1, 2 }));
        Assert.That(r.Labels, Is.EqualTo(new[] { 1, 0 }));
        Assert.That(r.Dim, Is.EqualTo(3));
        var w = f.WhereLabel(c => c != 1);
        Assert.That(w.Labels, Is.EqualTo(new[] { 0, 2, 0 }));
        Assert.That(w.Features, Is.EqualTo(new float[] { 0, 1, 2, 20, 21, 22, 30, 31, 32 }));
        Assert.That(f.WhereLabel(_ => false).Count, Is.Zero);
    }
}
