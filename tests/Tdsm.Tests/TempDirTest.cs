namespace Tdsm.Tests;

/// <summary>A fresh temporary folder per test, removed afterwards.</summary>
public abstract class TempDirTest
{
    protected string Dir { get; private set; } = "";

    [SetUp] public void MakeDir() { Dir = Path.Combine(Path.GetTempPath(), "tdsm-test-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(Dir); }
    [TearDown] public void RemoveDir() { try { Directory.Delete(Dir, true); } catch (IOException) { } }
}
