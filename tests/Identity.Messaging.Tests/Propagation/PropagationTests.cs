using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Identity.Contracts;
using Microsoft.EntityFrameworkCore;

namespace Identity.Messaging.Tests.Propagation;

/// <summary>
/// End to end: admin API → outbox (same transaction) → dispatcher → RabbitMQ over mutual TLS → the region's consumers
/// → its replica. Each test makes its own account; regions p-eu and p-us consume their own queues.
/// </summary>
[Collection(BrokerSuite.Name)]
public sealed partial class PropagationTests(PropagationFixture fixture) : IClassFixture<PropagationFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly string _unique = Guid.NewGuid().ToString("n")[..8];

    [Fact]
    public async Task UserLifecycle_ReachesTheAccountsRegion_OtherRegionSeesNothing()
    {
        var account = await CreateAccountAsync("p-eu");
        var (user, etag) = await CreateUserAsync(account, "ada");
        await EventuallyAsync(async () => await fixture.Eu.UserAsync(user) is { Deleted: false, Version: 1 });

        var patch = await SendAsync(HttpMethod.Patch, $"/admin/v1/accounts/{account}/users/{user}", new { displayName = "Ada L." }, etag);
        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        await EventuallyAsync(async () => await fixture.Eu.UserAsync(user) is { DisplayName: "Ada L." });

        Assert.Equal(HttpStatusCode.OK, (await fixture.Platform.PostAsync($"/admin/v1/accounts/{account}/users/{user}/disable", null)).StatusCode);
        await EventuallyAsync(async () => await fixture.Eu.UserAsync(user) is { Status: UserStatuses.Disabled, SessionsRevokedAt: not null });

        Assert.Equal(HttpStatusCode.NoContent, (await fixture.Platform.DeleteAsync($"/admin/v1/accounts/{account}/users/{user}")).StatusCode);
        await EventuallyAsync(async () => await fixture.Eu.UserAsync(user) is null or { Deleted: true });

        Assert.Null(await fixture.Us.UserAsync(user));
        Assert.Empty(await fixture.Us.UsersAsync(account));
    }

    [Fact]
    public async Task TwoThousandChanges_BrokerKilledAndRestartedMidStream_NothingLost()
    {
        var account = await CreateAccountAsync("p-eu", "p-us");
        const int workers = 4, usersPerWorker = 25, changes = 2_000;
        var perWorker = changes / workers;
        var done = 0;
        var killed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task? restart = null;

        async Task RestartAsync()
        {
            await killed.Task; // the other workers go on meanwhile; the broker comes back only once it is dead
            await fixture.Broker.ControlAsync("start", CancellationToken.None);
        }

        async Task WorkAsync(int worker)
        {
            var mine = new List<(string Id, string ETag)>();
            for (var i = 0; i < perWorker; i++)
            {
                var change = Interlocked.Increment(ref done);
                if (change == 600)
                {
                    await fixture.Broker.ControlAsync("kill", CancellationToken.None); // the broker dies mid-stream
                    killed.SetResult();
                }
                else if (change == 1_000)
                {
                    restart = RestartAsync(); // and comes back while changes go on
                }

                if (i < usersPerWorker)
                {
                    mine.Add(await CreateUserAsync(account, $"w{worker}u{i}"));
                    continue;
                }

                var pick = i % usersPerWorker;
                var (id, etag) = mine[pick];
                var response = await SendAsync(HttpMethod.Patch, $"/admin/v1/accounts/{account}/users/{id}", new { displayName = $"name {i}" }, etag);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                mine[pick] = (id, response.Headers.ETag!.Tag);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, workers).Select(WorkAsync));
        await restart!;

        var authority = await fixture.AuthorityUsersAsync(account);
        Assert.Equal(workers * usersPerWorker, authority.Count);
        foreach (var region in new[] { fixture.Eu, fixture.Us })
        {
            await EventuallyAsync(async () => SameUsers(authority, await region.UsersAsync(account)), TimeSpan.FromMinutes(3));
        }

        Assert.Equal(0, await fixture.PendingAsync());
    }

    [Fact]
    public async Task DuplicatesAndReordering_ReplicaKeepsTheNewest()
    {
        await using var identity = await fixture.Broker.StartIdentityAsync(CancellationToken.None);
        var account = Guid.NewGuid();
        var user = "dup-" + _unique;
        UserChanged Snapshot(long version) => new()
        {
            UserId = user, AccountId = account, Email = $"{user}@example.test", DisplayName = $"v{version}", Role = "member",
            Status = UserStatuses.Active, MfaEnrolled = false, Version = version, ChangedAt = DateTimeOffset.UtcNow,
        };

        await identity.SendToRegionAsync("p-eu", Snapshot(5), CancellationToken.None);
        await identity.SendToRegionAsync("p-eu", Snapshot(5), CancellationToken.None);
        await identity.SendToRegionAsync("p-eu", Snapshot(3), CancellationToken.None);
        await EventuallyAsync(async () => await fixture.Eu.UserAsync(user) is { Version: 5 });
        await identity.SendToRegionAsync("p-eu", new UserDeleted { UserId = user, AccountId = account, Version = 6, DeletedAt = DateTimeOffset.UtcNow },
            CancellationToken.None);
        await identity.SendToRegionAsync("p-eu", Snapshot(4), CancellationToken.None);
        await EventuallyAsync(async () => await fixture.Eu.UserAsync(user) is { Deleted: true });

        // A marker sent last: once it is in, everything sent before it has been consumed too (one queue, retried in place).
        var marker = Snapshot(1) with { UserId = "marker-" + _unique };
        await identity.SendToRegionAsync("p-eu", marker, CancellationToken.None);
        await EventuallyAsync(async () => await fixture.Eu.UserAsync(marker.UserId) is not null);
        await Task.Delay(500);

        var stored = await fixture.Eu.UserAsync(user);
        Assert.True(stored is { Deleted: true, Version: 6 }, $"expected the deletion (v6) to win, found v{stored?.Version} deleted={stored?.Deleted}");
    }

    [Fact]
    public async Task CrashAfterCommitBeforePublish_DeliveredWhenADispatcherRuns()
    {
        var account = await CreateAccountAsync("p-eu");
        await fixture.StopDispatcherAsync(); // no process publishes now: what is committed stays in the outbox
        try
        {
            var (user, _) = await CreateUserAsync(account, "offline");
            Assert.True(await fixture.PendingAsync() > 0);
            await Task.Delay(1_000);
            Assert.Null(await fixture.Eu.UserAsync(user));

            await fixture.StartDispatcherAsync();
            await EventuallyAsync(async () => await fixture.Eu.UserAsync(user) is { Deleted: false });
        }
        finally
        {
            if (fixture.Dispatcher is null)
            {
                await fixture.StartDispatcherAsync();
            }
        }
    }

    [Fact]
    public async Task TwoDispatchingReplicas_EachRowPublishedOnce_SentRowsPastRetentionDeleted()
    {
        var account = await CreateAccountAsync("p-eu", "p-us");
        await fixture.StopDispatcherAsync();
        long published = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Identity.Outbox" && instrument.Name == "identity.outbox.published")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref published, value));
        listener.Start();
        try
        {
            for (var i = 0; i < 20; i++)
            {
                await CreateUserAsync(account, $"lease{i}");
            }

            var expired = DateTimeOffset.UtcNow.AddDays(-30);
            await fixture.WithDatabaseAsync(async db =>
            {
                db.Outbox.Add(new Core.Propagation.OutboxMessage
                {
                    Region = "p-eu", MessageType = "UserDeleted", Payload = "{}", CreatedAt = expired, SentAt = expired,
                });
                await db.SaveChangesAsync();
            });
            var pending = await fixture.PendingAsync();
            Assert.True(pending >= 40); // 20 users × 2 regions, plus the account's own events

            await using var second = fixture.StartExtraDispatcher();
            await fixture.StartDispatcherAsync();
            await EventuallyAsync(async () => await fixture.PendingAsync() == 0);
            // The count is added just after the rows are marked sent: wait for it, then give a duplicate time to show.
            await EventuallyAsync(() => Task.FromResult(Interlocked.Read(ref published) >= pending));
            await Task.Delay(1_000); // a second replica publishing the same rows would show up here

            Assert.Equal(pending, Interlocked.Read(ref published));
            await fixture.WithDatabaseAsync(async db =>
                Assert.False(await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.AnyAsync(db.Outbox, m => m.SentAt < expired.AddDays(1))));
            var authority = await fixture.AuthorityUsersAsync(account);
            await EventuallyAsync(async () => SameUsers(authority, await fixture.Us.UsersAsync(account)));
        }
        finally
        {
            if (fixture.Dispatcher is null)
            {
                await fixture.StartDispatcherAsync();
            }
        }
    }

    [Fact]
    public async Task ChangesCommittedByAnotherReplica_WhileTheyFlow_LeaveAtTheBusyPaceNotThePollInterval()
    {
        var account = await CreateAccountAsync("p-eu");
        var (user, _) = await CreateUserAsync(account, "busy");
        await fixture.StopDispatcherAsync();
        try
        {
            // The dispatching replica never hears of these commits (they are made by the admin replica): it finds them by
            // polling, every 5 s while idle. Once a round found rows, it looks again after 20 ms while they keep coming.
            await using var dispatcher = fixture.StartExtraDispatcher(new Dictionary<string, string?>
            {
                ["Outbox:PollInterval"] = "00:00:05", ["Outbox:BusyPollInterval"] = "00:00:00.020",
            });
            var started = DateTimeOffset.UtcNow;
            var measuredFrom = started.AddSeconds(6); // after the first idle poll (~5 s) found the stream
            var i = 0;
            while (DateTimeOffset.UtcNow < started.AddSeconds(9))
            {
                await fixture.WithUserOperationsAsync(async (db, users) =>
                {
                    var changed = await db.Users.SingleAsync(u => u.Id == user);
                    var renamed = await users.ChangeProfileAsync(changed, new Core.Users.ProfileChange(null, $"busy {i++}", null),
                        new Core.Audit.Actor("test", null, null, null), CancellationToken.None);
                    Assert.True(renamed.Succeeded, renamed.ToString());
                });
                await Task.Delay(20);
            }

            await EventuallyAsync(async () => await fixture.PendingAsync() == 0);
            var waits = new List<TimeSpan>();
            await fixture.WithDatabaseAsync(async db => waits.AddRange((await db.Outbox.AsNoTracking()
                    .Where(m => m.UserId == user && m.SentAt != null)
                    .Select(m => new { m.CreatedAt, m.SentAt })
                    .ToListAsync())
                .Where(m => m.CreatedAt >= measuredFrom)
                .Select(m => m.SentAt!.Value - m.CreatedAt)));

            // Without the busy pace these rows (committed 6-9 s after start) would wait for the poll at ~10 s: 1-4 s each.
            Assert.True(waits.Count >= 20, $"only {waits.Count} changes in the measured window");
            var p90 = waits.Order().ElementAt(waits.Count * 9 / 10);
            Assert.True(p90 < TimeSpan.FromSeconds(1), $"p90 commit-to-published {p90.TotalMilliseconds:F0} ms over {waits.Count} changes");
        }
        finally
        {
            await fixture.StartDispatcherAsync();
        }
    }

    [Fact]
    public async Task RegionEnabledThenDisabled_UsersArriveThenLeave()
    {
        var account = await CreateAccountAsync("p-eu");
        var (first, _) = await CreateUserAsync(account, "first");
        var (second, _) = await CreateUserAsync(account, "second");
        await EventuallyAsync(async () => (await fixture.Eu.UsersAsync(account)).Count == 2);
        Assert.Empty(await fixture.Us.UsersAsync(account));

        Assert.Equal(HttpStatusCode.OK, (await fixture.Platform.PutAsync($"/admin/v1/accounts/{account}/regions/p-us", null)).StatusCode);
        await EventuallyAsync(async () => (await fixture.Us.UsersAsync(account)).Keys.Order().SequenceEqual(new[] { first, second }.Order()));

        Assert.Equal(HttpStatusCode.OK, (await fixture.Platform.DeleteAsync($"/admin/v1/accounts/{account}/regions/p-eu")).StatusCode);
        await EventuallyAsync(async () => (await fixture.Eu.UsersAsync(account)).Count == 0);
        Assert.Equal(2, (await fixture.Us.UsersAsync(account)).Count);
    }

    [Fact]
    public async Task Resync_RebuildsAnEmptiedReplica()
    {
        var account = await CreateAccountAsync("p-eu");
        for (var i = 0; i < 5; i++)
        {
            await CreateUserAsync(account, $"resync{i}");
        }

        var authority = await fixture.AuthorityUsersAsync(account);
        await EventuallyAsync(async () => SameUsers(authority, await fixture.Eu.UsersAsync(account)));

        await fixture.Eu.EmptyAsync();
        Assert.Empty(await fixture.Eu.UsersAsync(account));
        var result = await fixture.Eu.ResyncAsync();

        Assert.True(result.Users >= authority.Count);
        Assert.True(SameUsers(authority, await fixture.Eu.UsersAsync(account)));
        Assert.Empty(await fixture.Us.UsersAsync(account));
    }

    [Fact]
    public async Task DispatcherServer_ReadyWithTheBroker_OutboxStatusSaysSo()
    {
        var dispatcher = fixture.Dispatcher!.CreateClient();
        dispatcher.DefaultRequestHeaders.Authorization = fixture.Platform.DefaultRequestHeaders.Authorization;

        await EventuallyAsync(async () => (await dispatcher.GetAsync("/health/ready")).StatusCode == HttpStatusCode.OK);
        var status = await dispatcher.GetFromJsonAsync<JsonElement>("/admin/v1/outbox");
        Assert.True(status.GetProperty("brokerConfigured").GetBoolean());
        await EventuallyAsync(async () => (await fixture.Platform.GetFromJsonAsync<JsonElement>("/admin/v1/outbox")).GetProperty("pending").GetInt32() == 0);
    }

    /// <summary>Decision 0025, issue 19 item 2: the broker is not on the path of a token or a sign-in.</summary>
    [Fact]
    public async Task BrokerDown_TokensAndSignInsGoOn_ServerReadyButDegraded_ChangesWaitInTheOutboxAndArriveAfterRestart()
    {
        var dispatcher = fixture.Dispatcher!.CreateClient();
        await ReadinessBecomesAsync(dispatcher, "Healthy");
        var account = await CreateAccountAsync("p-eu");

        await fixture.Broker.ControlAsync("kill", CancellationToken.None);
        string userId;
        try
        {
            // The admin API keeps working and its events wait; the server stays in rotation (200), the broker reported.
            (userId, _) = await CreateUserAsync(account, "while-the-broker-is-down");
            await ReadinessBecomesAsync(dispatcher, "Degraded");
            Assert.True(await fixture.PendingAsync() > 0);
            Assert.Null(await fixture.Eu.UserAsync(userId));

            // Tokens and sign-ins go on at the server that publishes: each well within the publish timeout (5 s here), which
            // a request waiting on the broker would reach (timed one by one: both together took 5.05 s at a load of 37).
            var clock = Stopwatch.StartNew();
            var token = await dispatcher.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["scope"] = "identity.admin",
                ["client_id"] = "platform-admin", ["client_secret"] = fixture.Secret,
            }));
            Assert.Equal(HttpStatusCode.OK, token.StatusCode);
            Assert.True((await token.Content.ReadFromJsonAsync<JsonElement>()).TryGetProperty("access_token", out _));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"a token took {clock.Elapsed} without the broker");
            clock.Restart();
            var signIn = await SignInAsync(fixture.Dispatcher, $"while-the-broker-is-down-{_unique}@example.test", "Correct-Horse-Battery-9");
            Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
            Assert.DoesNotContain("/Account/Login", signIn.Headers.Location?.OriginalString ?? "", StringComparison.Ordinal);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"a sign-in took {clock.Elapsed} without the broker");
        }
        finally
        {
            await fixture.Broker.ControlAsync("start", CancellationToken.None);
        }

        await ReadinessBecomesAsync(dispatcher, "Healthy");
        await EventuallyAsync(async () => await fixture.Eu.UserAsync(userId) is { Deleted: false });
    }

    /// <summary>The login form, posted as a browser does (its anti-forgery cookie and field); the answer to the POST.</summary>
    private static async Task<HttpResponseMessage> SignInAsync(AuthorityHost host, string email, string password)
    {
        var browser = host.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
        var page = await browser.GetStringAsync("/Account/Login");
        var antiforgery = System.Text.RegularExpressions.Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        return await browser.PostAsync("/Account/Login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = antiforgery, ["Input.Email"] = email, ["Input.Password"] = password,
        }));
    }

    /// <summary>Polls /health/ready until it answers 200 with <paramref name="status"/>, overall and for the broker.</summary>
    private static async Task ReadinessBecomesAsync(HttpClient client, string status)
    {
        var clock = Stopwatch.StartNew();
        var last = "";
        while (clock.Elapsed < Patience)
        {
            using var response = await client.GetAsync("/health/ready");
            last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
            var report = JsonDocument.Parse(last[4..]).RootElement;
            if (response.StatusCode == HttpStatusCode.OK && report.GetProperty("status").GetString() == status
                && report.GetProperty("checks").TryGetProperty("broker", out var broker) && broker.GetString() == status)
            {
                return;
            }

            await Task.Delay(250);
        }

        Assert.Fail($"/health/ready never said {status} for the broker; last answer: {last}");
    }

    private static bool SameUsers(Dictionary<string, Core.Data.ApplicationUser> authority, Dictionary<string, Region.Replica.ReplicaUser> replica) =>
        authority.Count == replica.Count && authority.Values.All(a => replica.TryGetValue(a.Id, out var r)
            && r.Version == a.Version && r.DisplayName == a.DisplayName && r.Email == a.Email && r.Role == a.Role);

    private async Task<Guid> CreateAccountAsync(params string[] regions)
    {
        var response = await fixture.Platform.PostAsJsonAsync("/admin/v1/accounts", new { name = "Propagation " + _unique, regions });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private async Task<(string Id, string ETag)> CreateUserAsync(Guid account, string who)
    {
        var response = await fixture.Platform.PostAsJsonAsync($"/admin/v1/accounts/{account}/users",
            new { email = $"{who}-{_unique}@example.test", displayName = who, role = "member", password = "Correct-Horse-Battery-9" });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("user").GetProperty("id").GetString()!;
        return (id, response.Headers.ETag!.Tag);
    }

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string url, object body, string etag)
    {
        var request = new HttpRequestMessage(method, url) { Content = JsonContent.Create(body) };
        request.Headers.IfMatch.Add(new System.Net.Http.Headers.EntityTagHeaderValue(etag));
        return fixture.Platform.SendAsync(request);
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, TimeSpan? patience = null)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < (patience ?? Patience), "the replica did not reach the expected state in time");
            await Task.Delay(100);
        }
    }
}
