using Tdsm.Inference;

var recognizer = ActionRecognizer.Load(args.Length > 0 ? args[0] : "bundle");
Console.WriteLine("Candidate actions, one per line as 'label: description' (empty line to finish):");
var classes = new List<ActionClass>();
while (Console.ReadLine() is { Length: > 0 } line)
{
    var parts = line.Split(':', 2, StringSplitOptions.TrimEntries);
    classes.Add(new ActionClass(parts[0], parts.Length > 1 ? parts[1] : parts[0]));
}
var candidates = recognizer.CreateCandidates(classes);    // encoded once, reuse for every sequence
var rng = new Random(42);                                  // a synthetic 40-frame, one-person sequence
var joints = new float[40 * 25 * 3];
for (int i = 0; i < joints.Length; i++) joints[i] = (float)(rng.NextDouble() - 0.5);
var prediction = recognizer.CanEncodeSkeletons
    ? recognizer.Classify(new SkeletonSequence(joints, frames: 40), candidates)
    : recognizer.Classify(joints.AsSpan(0, recognizer.FeatureSize), candidates); // bundle without encoder: a feature
foreach (var s in prediction.Ranked) Console.WriteLine($"{s.Label,-20} error {s.Error:F4}");
