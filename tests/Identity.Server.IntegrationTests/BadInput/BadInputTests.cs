using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Identity.Server.IntegrationTests.BadInput;

/// <summary>
/// The bad-input test (issue 15): a seeded corpus of malformed requests to every endpoint family, sent over real
/// sockets to the real server on Kestrel. Malformed input is the client's fault: it gets a 4xx (RFC 6749 JSON error,
/// RFC 9457 problem, or Kestrel's own 400/413/414/431), never a 5xx, a dropped connection, or an exception in the log.
/// <para>
/// CI runs <see cref="DefaultCount"/> requests of seed <see cref="DefaultSeed"/>; <c>scripts/bad-input.sh</c> runs
/// the same generator with any count and seed (<c>IDENTITY_BAD_INPUT_COUNT</c>, <c>IDENTITY_BAD_INPUT_SEED</c>), or
/// only some requests again (<c>IDENTITY_BAD_INPUT_ONLY=17,230</c>).
/// </para>
/// </summary>
[Trait("Category", "BadInput")]
public sealed class BadInputTests(BadInputServer server, ITestOutputHelper output) : IClassFixture<BadInputServer>
{
    public const int DefaultCount = 3000;
    public const int DefaultSeed = 15;
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Corpus_MalformedRequestsToEveryEndpointFamily_NoServerErrorDroppedConnectionOrLoggedException()
    {
        // Arrange
        var seed = Setting("IDENTITY_BAD_INPUT_SEED", DefaultSeed);
        var count = Setting("IDENTITY_BAD_INPUT_COUNT", DefaultCount);
        var only = Environment.GetEnvironmentVariable("IDENTITY_BAD_INPUT_ONLY") is { Length: > 0 } list
            ? list.Split(',').Select(i => int.Parse(i.Trim(), CultureInfo.InvariantCulture)).ToList()
            : null;
        var corpus = new BadInputCorpus(server.Targets);
        var entries = only is null
            ? corpus.KnownDefects().Concat(corpus.Generate(seed, count))
            : only.Select(i => CorpusEntry.Of($"seed {seed} #{i}", corpus.Request(seed, i)));
        var failures = new List<Failure>();
        var otherErrors = new List<(string Entry, ServerLogRecord Record)>();
        var statuses = new SortedDictionary<string, SortedDictionary<int, int>>(StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();
        var sent = 0;

        // Act
        foreach (var entry in entries)
        {
            var mark = server.Log.Mark;
            var requests = new List<RawRequest>();
            var problems = new List<string>();
            foreach (var wave in entry.Waves)
            {
                var outcomes = await Task.WhenAll(wave.Select(r => RawHttp.SendAsync(server.EndPoint, r.Bytes, RequestTimeout)));
                for (var i = 0; i < wave.Count; i++)
                {
                    sent++;
                    Count(statuses, wave[i].Family, outcomes[i].Status ?? 0);
                    if (only is not null)
                    {
                        // A replay shows every answer, not only the wrong ones.
                        output.WriteLine($"{entry.Name} {wave[i].Family}: {wave[i].Description} -> {outcomes[i]}");
                    }

                    if (Judge(wave[i], outcomes[i]) is { } problem)
                    {
                        problems.Add(problem);
                        requests.Add(wave[i]);
                    }
                }
            }

            var records = server.Log.Since(mark);
            var logged = records.Where(r => r.IsUnhandledException).ToList();
            otherErrors.AddRange(records.Where(r => r.Level >= LogLevel.Error && !r.IsUnhandledException).Select(r => (entry.Name, r)));
            if (problems.Count > 0 || logged.Count > 0)
            {
                failures.Add(new Failure(entry, problems, logged, requests.Count > 0 ? requests : [.. entry.Waves.SelectMany(w => w)]));
            }
        }

        // Assert
        output.WriteLine($"bad input: {sent} requests (seed {seed}, {count} generated + {corpus.KnownDefects().Count} known defects and regressions) in {clock.Elapsed:mm\\:ss}");
        output.WriteLine("status counts by family (0 = no response):");
        foreach (var (family, counts) in statuses)
        {
            output.WriteLine($"  {family,-24} {string.Join("  ", counts.Select(c => $"{c.Key}×{c.Value}"))}");
        }

        if (otherErrors.Count > 0)
        {
            // Handled, so not failures; shown because an operator would read them as errors.
            output.WriteLine($"errors logged while answering below 500 ({otherErrors.Count}):");
            foreach (var group in otherErrors.GroupBy(e => e.Record.Headline))
            {
                output.WriteLine($"  {group.Count()}× {group.Key} (e.g. {group.First().Entry})");
            }
        }

        var report = Report(failures);
        if (Environment.GetEnvironmentVariable("IDENTITY_BAD_INPUT_REPORT") is { Length: > 0 } file)
        {
            await File.WriteAllTextAsync(file, report);
        }

        Assert.True(failures.Count == 0, report);
        if (only is null)
        {
            // Every endpoint family was reached, however small the corpus.
            Assert.Equal(corpus.Families.Order(StringComparer.Ordinal), statuses.Keys.Where(f => f != BadInputCorpus.KnownDefectFamily));
        }
    }

    /// <summary>Why an answer is wrong, or null when it is acceptable.</summary>
    private static string? Judge(RawRequest request, RawOutcome outcome) => outcome switch
    {
        { Status: null } => "dropped connection: " + outcome.Error,
        { Status: 505 } when request.Expect == Expect.VersionRefusal => null,
        { Status: >= 500 } => "server error: " + outcome,
        { Status: < 400 } when request.Expect == Expect.Refused => "accepted, must be refused: " + outcome,
        _ => null,
    };

    private static void Count(SortedDictionary<string, SortedDictionary<int, int>> statuses, string family, int status)
    {
        if (!statuses.TryGetValue(family, out var counts))
        {
            statuses[family] = counts = [];
        }

        counts[status] = counts.GetValueOrDefault(status) + 1;
    }

    /// <summary>
    /// Failures grouped by cause (the logged exception's type and throwing method, else the answer's status line), each
    /// group shown with its shortest request as a bash <c>$'…'</c> string (runs of 32 or more identical bytes written
    /// <c>{×N}</c>), and its corpus index: <c>ONLY=index scripts/bad-input.sh 0 SEED</c> sends exactly that request again.
    /// </summary>
    private static string Report(List<Failure> failures)
    {
        var text = new StringBuilder($"{failures.Count} malformed requests got a bad answer:").AppendLine();
        foreach (var group in failures.GroupBy(f => f.Cause).OrderByDescending(g => g.Count()))
        {
            var example = group.MinBy(f => f.Requests.Sum(r => r.Bytes.Length))!;
            text.AppendLine().AppendLine($"== {group.Count()}× {group.Key}")
                .AppendLine($"   in: {string.Join(", ", group.Select(f => f.Entry.Name).Take(12))}{(group.Count() > 12 ? ", …" : "")}")
                .AppendLine($"   e.g. {example.Entry.Name}:");
            foreach (var problem in example.Problems)
            {
                text.AppendLine("   " + problem);
            }

            foreach (var record in example.Logged.Take(3))
            {
                text.AppendLine("   logged: " + record);
            }

            foreach (var request in example.Requests)
            {
                text.AppendLine($"   {request.Family}: {request.Description}").AppendLine($"   $'{request.Replay()}'");
            }
        }

        // Control characters of the requests stay escaped: the report is text.
        return string.Concat(text.ToString().Select(c => c is '\n' or '\r' or '\t' || c >= ' ' && c != (char)0x7f ? c.ToString() : $"\\x{(int)c:x2}"));
    }

    private static int Setting(string name, int fallback) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;

    private sealed record Failure(CorpusEntry Entry, IReadOnlyList<string> Problems, IReadOnlyList<ServerLogRecord> Logged, IReadOnlyList<RawRequest> Requests)
    {
        /// <summary>What went wrong, without what differs from one request to the next (numbers, ids, trace ids).</summary>
        public string Cause => Logged.FirstOrDefault(r => r.Exception is not null) is { Exception: { } ex }
            ? $"{ex.GetType().Name} at {TopFrame(ex)} ({Requests[0].Family})"
            : Logged.Count > 0 ? $"logged {Logged[0].Level} {Logged[0].Category} ({Requests[0].Family})"
            : $"{Problems[0].Split('(')[0].Trim()} ({Requests[0].Family})";

        private static string TopFrame(Exception ex) =>
            ex.StackTrace?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("at ", StringComparison.Ordinal))?.Split('(')[0][3..] ?? "?";
    }
}
