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
var feature = new float[recognizer.FeatureSize];           // a synthetic skeleton feature
var rng = new Random(42);
for (int i = 0; i < feature.Length; i++) feature[i] = (float)(rng.NextDouble() * 2 - 1);
foreach (var s in recognizer.Classify(feature, candidates).Ranked)
    Console.WriteLine($"{s.Label,-20} error {s.Error:F4}");
