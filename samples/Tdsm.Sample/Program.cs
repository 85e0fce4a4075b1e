using Tdsm.Data;
using Tdsm.Inference;

var recognizer = ActionRecognizer.Load(args.Length > 0 ? args[0] : "runs/default/bundle");
Console.WriteLine("Candidate actions, one per line as 'label: description' (empty line to finish):");
var classes = new List<ActionClass>();
while (Console.ReadLine() is { Length: > 0 } line)
{
    var parts = line.Split(':', 2, StringSplitOptions.TrimEntries);
    classes.Add(new ActionClass(parts[0], parts.Length > 1 ? parts[1] : parts[0]));
}
var candidates = recognizer.CreateCandidates(classes);    // encoded once, reuse for every sequence
var cfg = SynthConfig.Short with { Frames = 32, Seed = 7 }; // a synthetic "raise the left arm" (class 0), raw Kinect coordinates
var ntu = new float[cfg.SampleSize];
SyntheticDataset.GenerateRaw(cfg, 0, ntu);                 // (3, T, 25, 2), zero after the action ends, as NTU arrays
int frames = cfg.Frames;
var joints = new float[frames * 25 * 3];                   // -> (T, 1 person, 25, 3)
for (int t = 0; t < frames; t++) for (int v = 0; v < 25; v++) for (int c = 0; c < 3; c++)
    joints[(t * 25 + v) * 3 + c] = ntu[SkeletonPreprocessing.Index(c, t, v, 0, cfg.Frames)];
foreach (var s in recognizer.Classify(new SkeletonSequence(joints, frames), candidates).Ranked)
    Console.WriteLine($"{s.Label,-28} error {s.Error:F4}");
