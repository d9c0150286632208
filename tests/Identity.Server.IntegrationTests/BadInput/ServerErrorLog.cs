using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Identity.Server.IntegrationTests.BadInput;

/// <summary>One log record at Warning or above, with the request it was written for (from the hosting log scope).</summary>
public sealed record ServerLogRecord(long Sequence, LogLevel Level, string Category, string Message, Exception? Exception, string? Request)
{
    /// <summary>
    /// An error, or any record that carries an exception: the server met something it did not handle. (A refusal
    /// the code expects is logged below Warning, or as a Warning without an exception.)
    /// </summary>
    public bool IsFailure => Level >= LogLevel.Error || Exception is not null;

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
