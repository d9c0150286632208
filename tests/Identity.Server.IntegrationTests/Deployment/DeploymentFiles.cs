using System.Diagnostics;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace Identity.Server.IntegrationTests.Deployment;

/// <summary>The repository's deployment files, the tools that render them, and their YAML read as JSON.</summary>
public static class DeploymentFiles
{
    public static string RepositoryRoot
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (!File.Exists(Path.Combine(directory.FullName, "Identity.sln")))
            {
                directory = directory.Parent ?? throw new InvalidOperationException("Identity.sln not found above the test folder");
            }

            return directory.FullName;
        }
    }

    public static string PathOf(params string[] parts) => Path.Combine([RepositoryRoot, .. parts]);

    /// <summary>Runs <paramref name="command"/> to its end (at most <paramref name="timeout"/>) and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output, string Errors)> RunAsync(
        string command, IEnumerable<string> arguments, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(command)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepositoryRoot,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{command} did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{command} did not finish within {timeout}");
        }

        return (process.ExitCode, await output, await errors);
    }

    /// <summary>Every document of a YAML stream, as JSON (scalars are strings, as YAML leaves them untyped).</summary>
    public static List<JsonNode> YamlDocuments(string yaml)
    {
        var deserializer = new DeserializerBuilder().Build();
        var json = new SerializerBuilder().JsonCompatible().Build();
        var parser = new Parser(new StringReader(yaml));
        parser.Consume<StreamStart>();
        var documents = new List<JsonNode>();
        while (parser.Accept<DocumentStart>(out _))
        {
            if (deserializer.Deserialize<object?>(parser) is { } document)
            {
                documents.Add(JsonNode.Parse(json.Serialize(document))!);
            }
        }

        return documents;
    }
}
