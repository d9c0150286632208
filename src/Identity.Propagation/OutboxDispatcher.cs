using System.Collections.Concurrent;
using Identity.Core.Data;
using Identity.Core.Propagation;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Identity.Propagation;

/// <summary>
/// Publishes the outbox: pending rows in id order, handed to the broker, marked sent only after the broker confirmed
/// them. At-least-once: a row whose confirmation was lost (crash, broker restart) is sent again, and regions ignore what
/// is not newer than what they hold. One replica dispatches at a time (a lease row in the database), so rows are not
/// published twice by two replicas under normal operation; when the lease holder dies, another takes over after
/// <see cref="OutboxOptions.LeaseDuration"/> (<see cref="DispatchLease"/>).
/// </summary>
public sealed partial class OutboxDispatcher(
    IServiceScopeFactory scopes,
    DispatchLease lease,
    IOutboxTransport transport,
    OutboxSignal signal,
    OutboxMetrics metrics,
    OutboxPublishState publishing,
    IOptions<OutboxOptions> options,
    TimeProvider time,
    ILogger<OutboxDispatcher> logger) : BackgroundService
{
    private static readonly TimeSpan CleanupInterval = TimeSpan.FromMinutes(5);

    // The metrics' backlog figures are read at most this often, not on every round (rounds run every poll interval).
    private static readonly TimeSpan ObserveInterval = TimeSpan.FromSeconds(1);

    // Rounds keep the busy pace this long after the last one that found rows: rows from other replicas arrive at their
    // own pace, and a stream slower than the busy interval leaves empty rounds between its rows.
    private static readonly TimeSpan BusyWindow = TimeSpan.FromSeconds(1);

    private readonly ResiliencePipeline _pipeline = BuildPipeline(publishing);
    private DateTimeOffset _nextCleanup = DateTimeOffset.MinValue;
    private DateTimeOffset _nextObserve = DateTimeOffset.MinValue;

    private DateTimeOffset _busyUntil = DateTimeOffset.MinValue;

    /// <summary>
    /// Retries a failed round with exponential backoff and jitter (0.2 s doubling to 10 s), inside a circuit breaker that
    /// stops hammering a broker that is down: while it is open, rounds fail at once and the loop waits.
    /// </summary>
    private static ResiliencePipeline BuildPipeline(OutboxPublishState publishing) => new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not OperationCanceledException and not BrokenCircuitException),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(200),
            MaxDelay = TimeSpan.FromSeconds(10),
            MaxRetryAttempts = 4,
            // Readiness says "Degraded" from the first failed attempt, not only once every retry is spent.
            OnRetry = retry =>
            {
                publishing.Failed(retry.Outcome.Exception?.GetType().Name ?? "publish failed");
                return default;
            },
        })
        .AddCircuitBreaker(new CircuitBreakerStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not OperationCanceledException),
            FailureRatio = 0.5,
            MinimumThroughput = 4,
            SamplingDuration = TimeSpan.FromSeconds(30),
            BreakDuration = TimeSpan.FromSeconds(5),
        })
        .Build();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        while (!stoppingToken.IsCancellationRequested)
        {
            var leader = false;
            try
            {
                leader = await lease.HoldAsync(stoppingToken);
                if (leader)
                {
                    int read;
                    do
                    {
                        read = await DispatchRoundAsync(stoppingToken);
                        if (read > 0)
                        {
                            _busyUntil = time.GetUtcNow() + BusyWindow;
                        }
                    }
                    // A full round: there may be more; go on without waiting, under a lease renewed first.
                    while (read == settings.BatchSize && await lease.HoldAsync(stoppingToken));

                    await CleanUpAsync(stoppingToken);
                }

                await ObserveAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (BrokenCircuitException)
            {
                _busyUntil = DateTimeOffset.MinValue; // a failing broker is not looked at again at the busy pace
                publishing.Failed("the broker keeps failing; publishing paused");
                LogCircuitOpen(logger);
            }
            catch (Exception e)
            {
                _busyUntil = DateTimeOffset.MinValue;
                publishing.Failed(e.GetType().Name);
                LogRoundFailed(logger, e.GetType().Name, e.Message);
            }

            try
            {
                // Changes flowing (a round found rows within the busy window): look again shortly, since rows committed by
                // other replicas only show up by polling. Idle: one query per poll interval. Not the leader: only the lease.
                var wait = !leader ? settings.LeaseDuration / 3
                    : time.GetUtcNow() < _busyUntil ? settings.BusyPollInterval
                    : settings.PollInterval;
                await signal.WaitAsync(wait, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        await lease.ReleaseAsync();
    }

    /// <summary>
    /// One round: up to a batch of pending rows, sent concurrently, the confirmed ones marked sent. A row that cannot be
    /// read is parked at once; a row that fails while the broker confirms others counts an attempt of its own and is
    /// parked after <see cref="OutboxOptions.MaxAttempts"/>; a round in which nothing gets through is the broker's failure
    /// (retried, then the circuit breaker) and counts against no row.
    /// </summary>
    /// <returns>How many rows the round read.</returns>
    private async Task<int> DispatchRoundAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var rows = await OutboxQueries.OldestPending(db, settings.BatchSize).ToListAsync(cancellationToken);
        if (rows.Count == 0)
        {
            return 0;
        }

        var readable = new List<(OutboxMessage Row, object Message, Type Type)>(rows.Count);
        foreach (var row in rows)
        {
            if (OutboxRowReader.TryRead(row, out var message, out var type, out var reason, out var error))
            {
                readable.Add((row, message, type));
            }
            else
            {
                // It would fail every round alike: set aside now, so that it holds back nothing.
                await ParkAsync(db, row, reason, error, row.Attempts);
            }
        }

        var confirmed = new ConcurrentDictionary<long, bool>();
        var ownFailures = new ConcurrentDictionary<long, Exception>();
        Exception? failure = null;
        try
        {
            await _pipeline.ExecuteAsync(async token =>
            {
                // Rows confirmed by an earlier attempt of this round are not sent again.
                var remaining = readable.Where(r => !confirmed.ContainsKey(r.Row.Id)).ToList();
                var failures = new ConcurrentDictionary<long, Exception>();
                var confirmedBefore = confirmed.Count;
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
                // Never past the lease: a round slowed by the broker or the machine (retries included) would otherwise go
                // on publishing after another replica took the lease over, and both would send the same rows.
                var left = lease.Remaining;
                if (left <= TimeSpan.Zero)
                {
                    throw new TimeoutException("The dispatch lease ran out during the round; nothing more is sent until it is held again.");
                }

                timeout.CancelAfter(settings.PublishTimeout < left ? settings.PublishTimeout : left);
                await Task.WhenAll(remaining.Select(async r =>
                {
                    // The row's send is a span of the change that wrote it (decision 0084), current while MassTransit sends.
                    using var dispatch = OutboxTracing.StartDispatch(r.Row);
                    try
                    {
                        await transport.SendAsync(r.Row.Region, r.Message, r.Type, OutboxTracing.Propagated(dispatch, r.Row), timeout.Token);
                        confirmed[r.Row.Id] = true;
                    }
                    catch (Exception e) when (!token.IsCancellationRequested)
                    {
                        OutboxTracing.Failed(dispatch, e);
                        failures[r.Row.Id] = e;
                    }
                }));
                if (failures.IsEmpty)
                {
                    return;
                }

                if (confirmed.Count > confirmedBefore)
                {
                    // The broker took other rows just now: these fail on their own, and are not retried this round.
                    foreach (var (id, e) in failures)
                    {
                        ownFailures[id] = e;
                    }

                    return;
                }

                throw failures.Values.First(); // nothing got through: the broker's failure, retried
            }, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            failure = e;
        }

        var now = time.GetUtcNow();
        var sent = confirmed.Keys.ToList();
        if (sent.Count > 0)
        {
            // Not the request's token: what the broker confirmed must be recorded even while shutting down.
            await db.Outbox.Where(m => sent.Contains(m.Id)).ExecuteUpdateAsync(s => s.SetProperty(m => m.SentAt, now), CancellationToken.None);
            metrics.Published(sent.Count);
        }

        foreach (var (id, e) in ownFailures)
        {
            var row = rows.First(r => r.Id == id);
            var error = Describe(e);
            if (row.Attempts + 1 >= settings.MaxAttempts)
            {
                await ParkAsync(db, row, ParkReasons.AttemptsExhausted, error, row.Attempts + 1);
            }
            else
            {
                await db.Outbox.Where(m => m.Id == id).ExecuteUpdateAsync(s => s
                    .SetProperty(m => m.Attempts, m => m.Attempts + 1).SetProperty(m => m.LastError, error), CancellationToken.None);
            }
        }

        metrics.Failed(ownFailures.Count);
        if (failure is null)
        {
            publishing.Succeeded();
            return rows.Count;
        }

        var failed = readable.Select(r => r.Row.Id).Except(sent).Except(ownFailures.Keys).ToList();
        if (failure is not BrokenCircuitException)
        {
            // The broker's failure: said on each row waiting for it, counted against none.
            var error = Describe(failure);
            await db.Outbox.Where(m => failed.Contains(m.Id))
                .ExecuteUpdateAsync(s => s.SetProperty(m => m.LastError, error), CancellationToken.None);
        }

        metrics.Failed(failed.Count);
        throw failure;
    }

    private async Task ParkAsync(AuthorityDbContext db, OutboxMessage row, string reason, string error, int attempts)
    {
        await OutboxParking.ParkAsync(db, row.Id, reason, error, attempts, time.GetUtcNow());
        metrics.Parked(1);
        LogParked(logger, row.Id, row.MessageType.Length <= 100 ? row.MessageType : row.MessageType[..100], row.Region, reason);
    }

    private static string Describe(Exception e) => Truncate($"{e.GetType().Name}: {e.Message}", 1_000);

    private async Task CleanUpAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (now < _nextCleanup)
        {
            return;
        }

        _nextCleanup = now + CleanupInterval;
        var cutoff = now - options.Value.Retention;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var deleted = await db.Outbox.Where(m => m.SentAt != null && m.SentAt < cutoff).ExecuteDeleteAsync(cancellationToken);
        if (deleted > 0)
        {
            LogCleanedUp(logger, deleted);
        }
    }

    private async Task ObserveAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (now < _nextObserve)
        {
            return;
        }

        _nextObserve = now + ObserveInterval;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var status = await OutboxStatus.ReadAsync(db, time, cancellationToken);
        metrics.Observe(status.Pending, status.Parked, TimeSpan.FromSeconds(status.OldestPendingAgeSeconds ?? 0));
    }

    private static string Truncate(string value, int length) => value.Length <= length ? value : value[..length];

    [LoggerMessage(LogLevel.Warning, "Outbox round failed ({ErrorType}: {ErrorMessage}); pending events stay pending and are retried")]
    private static partial void LogRoundFailed(ILogger logger, string errorType, string errorMessage);

    [LoggerMessage(LogLevel.Warning, "Outbox publishing paused: the broker keeps failing (circuit open)")]
    private static partial void LogCircuitOpen(ILogger logger);

    [LoggerMessage(LogLevel.Warning,
        "Outbox row {RowId} ({MessageType} for region {Region}) parked ({Reason}); the rows behind it go on. GET /admin/v1/outbox lists it, POST /admin/v1/outbox/{RowId}/requeue sends it again")]
    private static partial void LogParked(ILogger logger, long rowId, string messageType, string region, string reason);

    [LoggerMessage(LogLevel.Information, "Outbox retention: {Count} sent events deleted")]
    private static partial void LogCleanedUp(ILogger logger, int count);
}
