using System.Collections.Concurrent;
using System.Data.Common;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Identity.Contracts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.Propagation;
using Identity.Server.IntegrationTests.Infrastructure;
using Identity.Propagation;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Propagation;

/// <summary>
/// The transactional outbox without a broker (the embedded default): every change to a user or an account leaves its
/// events, for the right regions only, in the same transaction (a failed one leaves none: AccountsAndUsersApiTests); the admin API shows the backlog; regions resync
/// through the sync API. Account A lives in eu, account B in us.
/// </summary>
public abstract class OutboxTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>, IAsyncLifetime
    where TDatabase : TestDatabase, new()
{
    private const string Password = "Correct-Horse-Battery-9";
    private HttpClient _platform = null!;
    private string _unique = "";
    private Guid _accountA;
    private Guid _accountB;

    protected ServerFixture<TDatabase> Fixture => fixture;

    public async Task InitializeAsync()
    {
        _unique = Guid.NewGuid().ToString("n")[..8];
        _platform = await fixture.PlatformAdminAsync();
        foreach (var region in new[] { "eu", "us", "au" })
        {
            await ResponseAssert.StatusAsync(await _platform.SendJsonAsync(HttpMethod.Put, $"/admin/v1/regions/{region}",
                $$"""{"displayName":"Region {{region}}"}"""), HttpStatusCode.OK);
        }

        _accountA = await CreateAccountAsync("A", "eu");
        _accountB = await CreateAccountAsync("B", "us");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task UserLifecycle_EventsForTheAccountsRegionOnly_VersionsGrow()
    {
        var userId = await CreateUserAsync(_accountA, "life");
        var url = $"/admin/v1/accounts/{_accountA}/users/{userId}";
        var created = await ResponseAssert.StatusAsync(await _platform.GetAsync(url), HttpStatusCode.OK);
        Assert.Equal(1, created.GetProperty("version").GetInt64());
        await ResponseAssert.StatusAsync(await _platform.SendJsonAsync(HttpMethod.Patch, url, """{"displayName":"Renamed"}""", ifMatch: "\"1\""), HttpStatusCode.OK);
        await ResponseAssert.StatusAsync(await _platform.PostAsync(url + "/disable", null), HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.NoContent, (await _platform.DeleteAsync(url)).StatusCode);

        var rows = await RowsAsync(_accountA);

        Assert.All(rows, r => Assert.Equal("eu", r.Region));
        var userRows = rows.Where(r => r.UserId == userId).ToList();
        Assert.Equal(["UserChanged", "UserChanged", "UserChanged", "SessionsRevoked", "UserDeleted"], userRows.Select(r => r.MessageType));
        var snapshots = userRows.Where(r => r.MessageType == "UserChanged").Select(Read<UserChanged>).ToList();
        Assert.Equal("Renamed", snapshots[1].DisplayName);
        Assert.Equal(UserStatuses.Disabled, snapshots[2].Status);
        var deleted = Read<UserDeleted>(userRows[^1]);
        var versions = snapshots.Select(s => s.Version).Append(deleted.Version).ToList();
        Assert.Equal(versions.Order(), versions);
        Assert.Equal(versions.Count, versions.Distinct().Count());
        Assert.DoesNotContain(await RowsAsync(_accountB), r => r.UserId == userId);
    }

    [Fact]
    public async Task Lockout_IsAnEvent_FailedAttemptsBeforeItAreNot()
    {
        var etag = (await _platform.GetAsync($"/admin/v1/accounts/{_accountA}")).Headers.ETag!.Tag;
        await ResponseAssert.StatusAsync(await _platform.SendJsonAsync(HttpMethod.Put, $"/admin/v1/accounts/{_accountA}/settings",
            """{"lockout":{"maxFailedAttempts":3,"duration":"00:10:00"}}""", etag), HttpStatusCode.OK);
        var userId = await CreateUserAsync(_accountA, "locked");
        var events = (await RowsAsync(_accountA)).Count(r => r.UserId == userId);

        for (var attempt = 1; attempt <= 2; attempt++)
        {
            await new BrowserSession(fixture.Server).SignInAsync("/Account/Login", $"locked-{_unique}@example.test", $"Wrong-password-{attempt}");
        }

        Assert.Equal(events, (await RowsAsync(_accountA)).Count(r => r.UserId == userId)); // a failed attempt is not news to a region
        await new BrowserSession(fixture.Server).SignInAsync("/Account/Login", $"locked-{_unique}@example.test", "Wrong-password-3");

        var locked = Read<UserChanged>((await RowsAsync(_accountA)).Last(r => r.UserId == userId));
        Assert.True(locked.LockedOutUntil > DateTimeOffset.UtcNow.AddMinutes(9));
    }

    [Fact]
    public async Task RegionEnabledThenDisabled_NewRegionGetsUsersAndOldOneTheirDeletion()
    {
        var first = await CreateUserAsync(_accountA, "one");
        var second = await CreateUserAsync(_accountA, "two");
        var before = (await RowsAsync(_accountA)).Count;

        await ResponseAssert.StatusAsync(await _platform.PutAsync($"/admin/v1/accounts/{_accountA}/regions/au", null), HttpStatusCode.OK);
        var enabled = (await RowsAsync(_accountA)).Skip(before).ToList();
        await ResponseAssert.StatusAsync(await _platform.DeleteAsync($"/admin/v1/accounts/{_accountA}/regions/eu"), HttpStatusCode.OK);
        var disabled = (await RowsAsync(_accountA)).Skip(before + enabled.Count).ToList();

        // Enabling au: au learns the users and the account; eu learns the account's new region list.
        Assert.Equal(new[] { first, second }.Order(), enabled.Where(r => r is { Region: "au", MessageType: "UserChanged" }).Select(r => r.UserId!).Order());
        Assert.Equal(["au", "eu"], enabled.Where(r => r.MessageType == "AccountChanged").Select(r => r.Region).Order());
        // Disabling eu: eu gets the users' deletion and an account snapshot without eu; au gets newer snapshots.
        var euDeletes = disabled.Where(r => r is { Region: "eu", MessageType: "UserDeleted" }).Select(Read<UserDeleted>).ToList();
        Assert.Equal(new[] { first, second }.Order(), euDeletes.Select(d => d.UserId).Order());
        var euAccount = Read<AccountChanged>(Assert.Single(disabled, r => r is { Region: "eu", MessageType: "AccountChanged" }));
        Assert.Equal(["au"], euAccount.Regions);
        var auSnapshots = enabled.Where(r => r is { Region: "au", MessageType: "UserChanged" }).Select(Read<UserChanged>).ToList();
        Assert.All(euDeletes, d => Assert.True(d.Version > auSnapshots.Single(s => s.UserId == d.UserId).Version));
        Assert.DoesNotContain(enabled.Concat(disabled), r => r.Region == "us");
    }

    [Fact]
    public async Task UserChangeLoadedBeforeTheAccountLeftARegion_Fails_NothingMoreGoesToThatRegion()
    {
        var userId = await CreateUserAsync(_accountA, "moving");
        await ResponseAssert.StatusAsync(await _platform.PutAsync($"/admin/v1/accounts/{_accountA}/regions/au", null), HttpStatusCode.OK);

        // Another replica loads the user (the account still lives in eu and au) ...
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var user = await db.Users.SingleAsync(u => u.Id == userId);
        // ... the account leaves au meanwhile (au gets the user's deletion) ...
        await ResponseAssert.StatusAsync(await _platform.DeleteAsync($"/admin/v1/accounts/{_accountA}/regions/au"), HttpStatusCode.OK);
        var rowsAfterTheMove = await RowsAsync(_accountA);
        Assert.Equal("UserDeleted", rowsAfterTheMove.Last(r => r.Region == "au" && r.UserId == userId).MessageType);

        // ... and then makes its change through the operation: stale, so au never hears of the user again.
        var result = await Rename(db).RunAsync(Renamer, change =>
        {
            user.DisplayName = "Changed on a stale copy";
            change.Changed(user);
            return Task.FromResult(OperationResult.Done);
        }, CancellationToken.None, saveOnly: true);
        Assert.Equal(OperationResult.Stale, result);
        Assert.Equal(rowsAfterTheMove.Select(r => r.Id), (await RowsAsync(_accountA)).Select(r => r.Id));
    }

    [Fact]
    public async Task ProfileChanges_OneAfterAnotherOnOneCopy_EachWrittenWithItsEvents_AStaleCopyWritesNothing()
    {
        // The admin PATCH's operation, as the server runs it (on PostgreSQL one command outside a transaction: 0094).
        var userId = await CreateUserAsync(_accountA, "stamped");
        await ResponseAssert.StatusAsync(await _platform.PutAsync($"/admin/v1/accounts/{_accountA}/regions/au", null), HttpStatusCode.OK);
        var before = (await RowsAsync(_accountA)).Max(r => r.Id);
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var operations = scope.ServiceProvider.GetRequiredService<Core.Users.UserOperations>();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var user = await db.Users.SingleAsync(u => u.Id == userId);

        // Two changes in turn on one tracked copy: the second is guarded by what the first wrote, not by what was loaded.
        Assert.Equal(OperationResult.Done, await operations.ChangeProfileAsync(user, new Core.Users.ProfileChange(null, "First", null), Renamer, default));
        Assert.Equal(OperationResult.Done, await operations.ChangeProfileAsync(user, new Core.Users.ProfileChange(null, "Second", null), Renamer, default));

        // Another replica changes the user; this copy is then stale, and its change writes no row, event or audit entry.
        await using (var other = fixture.Server.Services.CreateAsyncScope())
        {
            var otherUser = await other.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.SingleAsync(u => u.Id == userId);
            Assert.Equal(OperationResult.Done, await other.ServiceProvider.GetRequiredService<Core.Users.UserOperations>()
                .ChangeProfileAsync(otherUser, new Core.Users.ProfileChange(null, "Elsewhere", null), Renamer, default));
        }

        Assert.Equal(OperationResult.Stale, await operations.ChangeProfileAsync(user, new Core.Users.ProfileChange(null, "Stale", null), Renamer, default));
        Assert.Equal("Second", user.DisplayName); // the copy is back as it was loaded (or last written)

        var rows = (await RowsAsync(_accountA)).Where(r => r.Id > before && r.UserId == userId).ToList();
        Assert.Equal(
            [("au", "First", 3L), ("eu", "First", 3L), ("au", "Second", 4L), ("eu", "Second", 4L), ("au", "Elsewhere", 5L), ("eu", "Elsewhere", 5L)],
            rows.Select(r => (r.Region, Read<UserChanged>(r).DisplayName, Read<UserChanged>(r).Version)));
        await using var check = fixture.Server.Services.CreateAsyncScope();
        var checkDb = check.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var stored = await checkDb.Users.AsNoTracking().SingleAsync(u => u.Id == userId);
        Assert.Equal(("Elsewhere", 5L), (stored.DisplayName, stored.Version));
        var audit = await checkDb.AuditEntries.Where(a => a.SubjectId == userId && a.EventType == "user.updated").OrderBy(a => a.Id).ToListAsync();
        Assert.Equal(["First", "Second", "Elsewhere"], audit.Select(a => JsonDocument.Parse(a.Details!).RootElement.GetProperty("after").GetProperty("displayName").GetString()));
    }

    [Fact]
    public async Task UserChange_RoutedByTheRegionsTheUserCarries_WithoutReadingTheAccountsRegions()
    {
        // A new user carries no regions: a move committed while it was created would not have rewritten them. The first
        // change reads the account's regions, in the change's guard (the user's version), and the user keeps them.
        var userId = await CreateUserAsync(_accountA, "carrier");
        var (sql, rows) = await RenameAsync(userId, "Renamed once");
        Assert.Equal("eu", Assert.Single(rows).Region);
        Assert.Contains(sql, s => s.Contains("AccountRegions", StringComparison.Ordinal));

        // Enabling au rewrote the regions the user carries; a change to the user is routed by them, reading no other table.
        await ResponseAssert.StatusAsync(await _platform.PutAsync($"/admin/v1/accounts/{_accountA}/regions/au", null), HttpStatusCode.OK);
        (sql, rows) = await RenameAsync(userId, "Renamed twice");
        Assert.Equal(["au", "eu"], rows.Select(r => r.Region).Order());
        Assert.All(rows, r => Assert.Equal("Renamed twice", Read<UserChanged>(r).DisplayName));
        Assert.DoesNotContain(sql, s => s.Contains("AccountRegions", StringComparison.Ordinal));

        // A user stored before the codes existed (null) is routed by the account's regions, read once, and keeps them.
        await using (var scope = fixture.Server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            await db.Users.Where(u => u.Id == userId).ExecuteUpdateAsync(s => s.SetProperty(u => u.RegionCodes, (string?)null));
        }

        (sql, rows) = await RenameAsync(userId, "Renamed three times");
        Assert.Equal(["au", "eu"], rows.Select(r => r.Region).Order());
        Assert.Contains(sql, s => s.Contains("AccountRegions", StringComparison.Ordinal));
        (sql, rows) = await RenameAsync(userId, "Renamed four times");
        Assert.Equal(["au", "eu"], rows.Select(r => r.Region).Order());
        Assert.DoesNotContain(sql, s => s.Contains("AccountRegions", StringComparison.Ordinal));

        // Leaving eu rewrites them again: the next change goes to au only.
        await ResponseAssert.StatusAsync(await _platform.DeleteAsync($"/admin/v1/accounts/{_accountA}/regions/eu"), HttpStatusCode.OK);
        (_, rows) = await RenameAsync(userId, "Renamed in au");
        Assert.Equal("au", Assert.Single(rows).Region);
    }

    private static readonly Actor Renamer = new("test", null, null, null);

    /// <summary>An operation run on <paramref name="db"/> (a change's one home, as the user operations use it).</summary>
    private static ChangeUnit Rename(AuthorityDbContext db) => new(db, new AuditTrail(db, TimeProvider.System), TimeProvider.System);

    /// <summary>
    /// Loads the user in a fresh context and renames them in one operation run: the SQL that its SaveChanges ran, and the
    /// rows it added.
    /// </summary>
    private async Task<(List<string> Sql, List<OutboxMessage> Rows)> RenameAsync(string userId, string name)
    {
        // The server's own options (database, outbox interceptor), and one more interceptor that records the SQL.
        var commands = new CommandsOf();
        var options = new DbContextOptionsBuilder<AuthorityDbContext>(fixture.Server.Services.GetRequiredService<DbContextOptions<AuthorityDbContext>>())
            .AddInterceptors(commands).Options;
        await using var db = new AuthorityDbContext(options);
        var user = await db.Users.SingleAsync(u => u.Id == userId);
        var before = await db.Outbox.MaxAsync(m => (long?)m.Id) ?? 0;
        commands.Sql.Clear();
        var result = await Rename(db).RunAsync(Renamer, change =>
        {
            user.DisplayName = name;
            change.Changed(user);
            return Task.FromResult(OperationResult.Done);
        }, CancellationToken.None, saveOnly: true);
        Assert.True(result.Succeeded, result.ToString());
        var sql = commands.Sql.ToList();
        var rows = await db.Outbox.AsNoTracking().Where(m => m.Id > before && m.UserId == userId).ToListAsync();
        return (sql, rows);
    }

    /// <summary>The SQL of every command a context runs.</summary>
    private sealed class CommandsOf : DbCommandInterceptor
    {
        public ConcurrentQueue<string> Sql { get; } = new();

        public override DbCommand CommandInitialized(CommandEndEventData eventData, DbCommand result)
        {
            Sql.Enqueue(result.CommandText);
            return result;
        }
    }

    [Fact]
    public async Task Settings_BusyPollSlowerThanTheIdlePoll_RefuseToStart()
    {
        await using var server = fixture.StartServer(s =>
        {
            s["Outbox:PollInterval"] = "00:00:00.100";
            s["Outbox:BusyPollInterval"] = "00:00:00.200";
        });
        var error = Assert.ThrowsAny<Exception>(() => server.Start());
        Assert.Contains("Outbox:BusyPollInterval must not exceed Outbox:PollInterval", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task OutboxStatus_ShowsPendingEventsAndTheirAge_ToPlatformAdminsOnly()
    {
        await CreateUserAsync(_accountA, "status");

        var status = await ResponseAssert.StatusAsync(await _platform.GetAsync("/admin/v1/outbox"), HttpStatusCode.OK);

        Assert.True(status.GetProperty("pending").GetInt32() >= 1);
        Assert.True(status.GetProperty("oldestPendingAgeSeconds").GetDouble() >= 0);
        Assert.False(status.GetProperty("brokerConfigured").GetBoolean());
        Assert.Contains(status.GetProperty("byRegion").EnumerateArray(), r => r.GetProperty("region").GetString() == "eu");

        await CreateUserAsync(_accountA, "admin", role: "admin");
        var accountAdmin = await fixture.AsUserAsync($"admin-{_unique}@example.test", Password);
        Assert.Equal(HttpStatusCode.Forbidden, (await accountAdmin.GetAsync("/admin/v1/outbox")).StatusCode);
    }

    [Fact]
    public async Task ParkedRow_ListedInTheStatus_RequeuedByAPlatformAdminWithAnAuditEntry()
    {
        var region = "pk" + _unique;
        var id = await ParkRowAsync(region, "UserChanged", """{"userId":"u-secret@example.test"}""");

        var status = await ResponseAssert.StatusAsync(await _platform.GetAsync("/admin/v1/outbox"), HttpStatusCode.OK);
        Assert.True(status.GetProperty("parked").GetInt32() >= 1);
        var perRegion = Assert.Single(status.GetProperty("parkedByRegion").EnumerateArray(), r => r.GetProperty("region").GetString() == region);
        Assert.Equal(1, perRegion.GetProperty("parked").GetInt32());
        var listed = Assert.Single(status.GetProperty("parkedRows").EnumerateArray(), r => r.GetProperty("id").GetInt64() == id);
        Assert.Equal(ParkReasons.AttemptsExhausted, listed.GetProperty("reason").GetString());
        Assert.Equal(5, listed.GetProperty("attempts").GetInt32());
        Assert.Equal("TimeoutException: no confirmation", listed.GetProperty("lastError").GetString());
        Assert.DoesNotContain(status.GetProperty("byRegion").EnumerateArray(), r => r.GetProperty("region").GetString() == region); // not pending
        Assert.DoesNotContain("u-secret", status.GetRawText(), StringComparison.Ordinal); // never the payload

        var requeued = await ResponseAssert.StatusAsync(await _platform.PostAsync($"/admin/v1/outbox/{id}/requeue", null), HttpStatusCode.OK);
        Assert.Equal("pending", requeued.GetProperty("state").GetString());

        var row = await RowAsync(id);
        Assert.Null(row.ParkedAt);
        Assert.Equal(0, row.Attempts);
        status = await ResponseAssert.StatusAsync(await _platform.GetAsync("/admin/v1/outbox"), HttpStatusCode.OK);
        Assert.Contains(status.GetProperty("byRegion").EnumerateArray(), r => r.GetProperty("region").GetString() == region);
        Assert.DoesNotContain(status.GetProperty("parkedRows").EnumerateArray(), r => r.GetProperty("id").GetInt64() == id);
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var audit = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().AuditEntries.AsNoTracking()
            .SingleAsync(e => e.EventType == "outbox.requeued" && e.SubjectId == id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("attempts_exhausted", audit.Details!, StringComparison.Ordinal);

        var again = await _platform.PostAsync($"/admin/v1/outbox/{id}/requeue", null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("application/problem+json", again.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData("9223372036854775807", HttpStatusCode.NotFound)]
    [InlineData("abc", HttpStatusCode.BadRequest)]
    [InlineData("-1", HttpStatusCode.BadRequest)]
    [InlineData("0", HttpStatusCode.BadRequest)]
    [InlineData("99999999999999999999", HttpStatusCode.BadRequest)]
    public async Task Requeue_UnknownOrMalformedId_ProblemDetails(string id, HttpStatusCode expected)
    {
        var response = await _platform.PostAsync($"/admin/v1/outbox/{id}/requeue", null);

        Assert.Equal(expected, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Requeue_AccountAdmin_ForbiddenAndTheRowStaysParked()
    {
        var id = await ParkRowAsync("pk" + _unique, "Unheard", "{}");
        await CreateUserAsync(_accountA, "requeuer", role: "admin");
        var accountAdmin = await fixture.AsUserAsync($"requeuer-{_unique}@example.test", Password);

        var response = await accountAdmin.PostAsync($"/admin/v1/outbox/{id}/requeue", null);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.NotNull((await RowAsync(id)).ParkedAt);
    }

    [Fact]
    public async Task RequeueRegion_ParkedRowsInTwoRegions_ThatRegionsPendingAgainInOneAuditEntry()
    {
        var region = "pk" + _unique;
        var first = await ParkRowAsync(region, "UserChanged", "{}");
        var second = await ParkRowAsync(region, "Unheard", "{}");
        var elsewhere = await ParkRowAsync("po" + _unique, "UserChanged", "{}");

        var body = await ResponseAssert.StatusAsync(await _platform.PostAsync($"/admin/v1/outbox/requeue?region={region}", null), HttpStatusCode.OK);

        Assert.Equal((region, 2), (body.GetProperty("region").GetString(), body.GetProperty("requeued").GetInt32()));
        Assert.Equal([first, second], body.GetProperty("ids").EnumerateArray().Select(i => i.GetInt64()));
        foreach (var id in new[] { first, second })
        {
            var row = await RowAsync(id);
            Assert.Equal(((DateTimeOffset?)null, (string?)null, 0, (string?)null), (row.ParkedAt, row.ParkedReason, row.Attempts, row.LastError));
        }

        Assert.NotNull((await RowAsync(elsewhere)).ParkedAt); // another region's parked row stays parked
        var status = await ResponseAssert.StatusAsync(await _platform.GetAsync("/admin/v1/outbox"), HttpStatusCode.OK);
        Assert.Equal(2, Assert.Single(status.GetProperty("byRegion").EnumerateArray(), r => r.GetProperty("region").GetString() == region)
            .GetProperty("pending").GetInt32());
        await using (var scope = fixture.Server.Services.CreateAsyncScope())
        {
            var audit = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().AuditEntries.AsNoTracking()
                .SingleAsync(e => e.EventType == "outbox.requeued_region" && e.SubjectId == region);
            var details = JsonDocument.Parse(audit.Details!).RootElement;
            Assert.Equal(2, details.GetProperty("rows").GetInt32());
            Assert.Equal(2, details.GetProperty("reasons").GetProperty(ParkReasons.AttemptsExhausted).GetInt32());
        }

        var again = await ResponseAssert.StatusAsync(await _platform.PostAsync($"/admin/v1/outbox/requeue?region={region}", null), HttpStatusCode.OK);
        Assert.Equal(0, again.GetProperty("requeued").GetInt32()); // nothing parked there any more: nothing done, nothing audited
    }

    [Theory]
    [InlineData("")]
    [InlineData("?region=")]
    [InlineData("?region=%20")]
    [InlineData("?region=a-region-code-too-long")]
    public async Task RequeueRegion_NoOrMalformedRegion_ProblemDetails(string query)
    {
        var response = await _platform.PostAsync($"/admin/v1/outbox/requeue{query}", null);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task RequeueRegion_AccountAdmin_ForbiddenAndTheRowsStayParked()
    {
        var region = "pk" + _unique;
        var id = await ParkRowAsync(region, "Unheard", "{}");
        await CreateUserAsync(_accountA, "bulk", role: "admin");
        var accountAdmin = await fixture.AsUserAsync($"bulk-{_unique}@example.test", Password);

        var response = await accountAdmin.PostAsync($"/admin/v1/outbox/requeue?region={region}", null);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.NotNull((await RowAsync(id)).ParkedAt);
    }

    /// <summary>A row as the dispatcher parks one (test arrangement: no broker here).</summary>
    private async Task<long> ParkRowAsync(string region, string messageType, string payload)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var row = new OutboxMessage
        {
            Region = region, MessageType = messageType, Payload = payload, AccountId = _accountA, CreatedAt = DateTimeOffset.UtcNow,
            ParkedAt = DateTimeOffset.UtcNow, ParkedReason = ParkReasons.AttemptsExhausted, Attempts = 5, LastError = "TimeoutException: no confirmation",
        };
        db.Outbox.Add(row);
        await db.SaveChangesAsync();
        return row.Id;
    }

    private async Task<OutboxMessage> RowAsync(long id)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Outbox.AsNoTracking().SingleAsync(m => m.Id == id);
    }

    [Fact]
    public async Task SyncApi_RegionClientPagesThroughItsUsers_OtherRegionRefused()
    {
        var created = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            created.Add(await CreateUserAsync(_accountA, $"sync{i}"));
        }

        var otherRegionUser = await CreateUserAsync(_accountB, "elsewhere");
        var eu = await RegionClientAsync("eu");

        var seen = new List<UserChanged>();
        string? after = null;
        var pages = 0;
        do
        {
            var page = await ResponseAssert.StatusAsync(await eu.GetAsync($"/sync/v1/regions/eu/users?limit=2&after={after}"), HttpStatusCode.OK);
            var typed = page.Deserialize<UserPage>(OutboxEvents.JsonOptions)!;
            seen.AddRange(typed.Users);
            after = typed.Next;
            pages++;
        }
        while (after is not null);

        Assert.True(pages >= 2);
        Assert.Subset(seen.Select(u => u.UserId).ToHashSet(), created.ToHashSet());
        Assert.DoesNotContain(seen, u => u.UserId == otherRegionUser);
        Assert.All(seen, u => Assert.NotEqual(Guid.Empty, u.AccountId));
        Assert.Equal(HttpStatusCode.Forbidden, (await eu.GetAsync("/sync/v1/regions/us/users")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await fixture.Client.GetAsync("/sync/v1/regions/eu/users")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await eu.GetAsync("/sync/v1/regions/eu/users?limit=0")).StatusCode);
    }

    private async Task<HttpClient> RegionClientAsync(string region)
    {
        var body = await ResponseAssert.StatusAsync(
            await fixture.Client.ClientCredentialsAsync("region-" + region, fixture.BasicSecret, "identity.sync"), HttpStatusCode.OK);
        return fixture.WithBearer(body.GetProperty("access_token").GetString()!);
    }

    private async Task<Guid> CreateAccountAsync(string name, string region)
    {
        var body = await ResponseAssert.StatusAsync(await _platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts",
            $$"""{"name":"Outbox {{name}} {{_unique}}","regions":["{{region}}"]}"""), HttpStatusCode.Created);
        return body.GetProperty("id").GetGuid();
    }

    private async Task<string> CreateUserAsync(Guid account, string who, string role = "member")
    {
        var body = await ResponseAssert.StatusAsync(await _platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{account}/users",
            $$"""{"email":"{{who}}-{{_unique}}@example.test","displayName":"{{who}}","role":"{{role}}","password":"{{Password}}"}"""),
            HttpStatusCode.Created);
        return body.GetProperty("user").GetProperty("id").GetString()!;
    }

    private async Task<List<OutboxMessage>> RowsAsync(Guid account)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        return await db.Outbox.AsNoTracking().Where(m => m.AccountId == account).OrderBy(m => m.Id).ToListAsync();
    }

    private static T Read<T>(OutboxMessage row) => JsonSerializer.Deserialize<T>(row.Payload, OutboxEvents.JsonOptions)!;
}

public sealed class SqliteOutboxTests(ServerFixture<SqliteTestDatabase> fixture) : OutboxTests<SqliteTestDatabase>(fixture);

public sealed class PostgresOutboxTests(ServerFixture<PostgresTestDatabase> fixture) : OutboxTests<PostgresTestDatabase>(fixture)
{
    /// <summary>
    /// PostgreSQL plans the dispatcher's query by the table's statistics. Taken during a backlog (most rows pending), they
    /// made it walk the primary key through every retained sent row on each round; the pending-rows index holds only
    /// what the round looks for, whatever the statistics say.
    /// </summary>
    [Fact]
    public async Task DispatcherRound_StatisticsTakenDuringABacklog_ReadsOnlyThePendingRows()
    {
        const string marker = "plan-test";
        await using var scope = Fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        await db.Database.ExecuteSqlRawAsync("""ALTER TABLE "Outbox" SET (autovacuum_enabled = false)""");
        try
        {
            // A backlog of 400 events, analyzed then; then it drains and 30,000 more are sent (retained); 5 are pending.
            await InsertAsync(400, sent: false);
            await db.Database.ExecuteSqlRawAsync("""ANALYZE "Outbox" """);
            await db.Outbox.Where(m => m.Region == marker).ExecuteUpdateAsync(s => s.SetProperty(m => m.SentAt, DateTimeOffset.UtcNow));
            await InsertAsync(30_000, sent: true);
            await InsertAsync(5, sent: false);

            var query = OutboxQueries.OldestPending(db, 500).ToQueryString();
            var connection = db.Database.GetDbConnection();
            await db.Database.OpenConnectionAsync();
            await using var explain = connection.CreateCommand();
            explain.CommandText = "EXPLAIN (ANALYZE, COSTS OFF) " + Inline(query);
            var plan = new List<string>();
            await using (var reader = await explain.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    plan.Add(reader.GetString(0));
                }
            }


            Assert.Contains(plan, line => line.Contains("IX_Outbox_Pending", StringComparison.Ordinal));
            Assert.DoesNotContain(plan, line => line.Contains("Rows Removed by Filter", StringComparison.Ordinal));
        }
        finally
        {
            await db.Outbox.Where(m => m.Region == marker).ExecuteDeleteAsync();
            await db.Database.ExecuteSqlRawAsync("""ALTER TABLE "Outbox" RESET (autovacuum_enabled)""");
        }

        Task InsertAsync(int count, bool sent) => sent
            ? db.Database.ExecuteSqlAsync($"""
                INSERT INTO "Outbox" ("Region", "MessageType", "Payload", "CreatedAt", "SentAt", "Attempts")
                SELECT {marker}, 'UserChanged', repeat('x', 400), now(), now(), 0 FROM generate_series(1, {count})
                """)
            : db.Database.ExecuteSqlAsync($"""
                INSERT INTO "Outbox" ("Region", "MessageType", "Payload", "CreatedAt", "SentAt", "Attempts")
                SELECT {marker}, 'UserChanged', repeat('x', 400), now(), NULL, 0 FROM generate_series(1, {count})
                """);
    }

    /// <summary>EF Core's query text with its parameters (declared in leading <c>-- @name='value'</c> lines) written in.</summary>
    private static string Inline(string query)
    {
        var lines = query.Split('\n');
        var sql = string.Join('\n', lines.Where(l => !l.StartsWith("--", StringComparison.Ordinal)));
        foreach (var match in lines.Select(l => Regex.Match(l, "^-- (@\\w+)='([^']*)'")).Where(m => m.Success))
        {
            sql = Regex.Replace(sql, Regex.Escape(match.Groups[1].Value) + "\\b", match.Groups[2].Value);
        }

        return sql;
    }
}
