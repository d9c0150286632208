using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Identity.Server.IntegrationTests.BadInput;

/// <summary>One log record at Warning or above, with the request it was written for (from the hosting log scope).</summary>
public sealed record ServerLogRecord(long Sequence, LogLevel Level, string Category, string Message, Exception? Exception, string? Request)
{
    /// <summary>
    /// An exception nothing in the application handled: reported by the exception handler, by Kestrel (thrown after
    /// the response started, or by a connection), by the hosting layer, or anything Critical. Errors the code logs
    /// and then answers for (EF Core logs every failed command at Error, also one the caller turns into a 409) are
    /// not unhandled; they are listed beside the result.
    /// </summary>
    public bool IsUnhandledException => Level == LogLevel.Critical
        || Level >= LogLevel.Error && (Category.StartsWith("Microsoft.AspNetCore.Diagnostics.", StringComparison.Ordinal)
            || Category.StartsWith("Microsoft.AspNetCore.Server.Kestrel", StringComparison.Ordinal)
            || Category.StartsWith("Microsoft.AspNetCore.Hosting.", StringComparison.Ordinal));

    /// <summary>Category and the message's first line, without the values that differ from one request to the next.</summary>
    public string Headline
    {
        get
        {
            var line = System.Text.RegularExpressions.Regex.Replace($"{Category}: {Message.Split('\n')[0]}", @"\d+", "#");
            return line.Length <= 160 ? line : line[..160];
        }
    }

    public override string ToString() =>
        $"{Level} {Category}: {Message}{(Request is null ? "" : $" [{Request}]")}{(Exception is null ? "" : Environment.NewLine + Exception)}";
}

/// <summary>
/// The server's log at Warning and above, in order. Records below Warning are refused at <see cref="ILogger.IsEnabled"/>,
/// so thousands of requests cost no formatting.
/// </summary>
public sealed class ServerErrorLog : ILoggerProvider, ISupportExternalScope
{
    private readonly ConcurrentQueue<ServerLogRecord> _records = new();
    private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();
    private long _sequence;

    public long Mark => Interlocked.Read(ref _sequence);

    /// <summary>Records written after <paramref name="mark"/> (a value of <see cref="Mark"/>).</summary>
    public IReadOnlyList<ServerLogRecord> Since(long mark) => [.. _records.Where(r => r.Sequence > mark)];

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, this);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ServerErrorLog log) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => log._scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            string? request = null;
            log._scopes.ForEachScope((scope, _) =>
            {
                if (scope is IEnumerable<KeyValuePair<string, object?>> values
                    && values.FirstOrDefault(v => v.Key == "RequestPath").Value is { } path)
                {
                    request = $"{values.FirstOrDefault(v => v.Key == "RequestId").Value} {path}";
                }
            }, (object?)null);
            log._records.Enqueue(new ServerLogRecord(Interlocked.Increment(ref log._sequence), logLevel, category, formatter(state, exception), exception, request));
        }
    }
}
