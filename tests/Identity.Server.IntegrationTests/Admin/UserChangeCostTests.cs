using System.Net;
using System.Text.RegularExpressions;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.Users;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Identity.Server.IntegrationTests.Admin;

/// <summary>
/// The database work of one user change as an administrator makes it (issue 18 item 5, bench/propagation-bench.sh):
/// <c>PATCH /admin/v1/accounts/{id}/users/{id}</c> with If-Match, through UserAdministration, the user operation and
/// the outbox. Every SQL statement the server executes for the request counts; each costs server and PostgreSQL CPU
/// (on the benchmark machine a statement was ~0.1 ms of the writer's CPU and more of PostgreSQL's), so a new one per
/// change should be a decision, not an accident.
/// </summary>
public abstract class UserChangeCostTests<TDatabase>(ServerFixture<TDatabase> fixture, ITestOutputHelper output)
    : IClassFixture<ServerFixture<TDatabase>> where TDatabase : TestDatabase, new()
{
    /// <summary>
    /// The statements of a display-name change, the request's own reads included: the calling client's row (read afresh
    /// so that a deleted client is refused at once), the user, the change, and the pending address for the answer. On
    /// PostgreSQL the change is one batch (the user's UPDATE, the audit entry and one outbox row per region); SQLite
    /// sends them one by one. Before decision 0092, ASP.NET Core Identity's validator also looked the unchanged user
    /// name and email up (two more), and EF Core wrapped SaveChanges in a savepoint (two more on PostgreSQL, not
    /// counted here: they are transaction commands, checked below).
    /// </summary>
    protected abstract int Budget { get; }

    /// <summary>
    /// PostgreSQL: the change (the user's UPDATE, the audit entry and the outbox rows) is one command outside any
    /// transaction, which PostgreSQL runs as one implicit transaction: no BEGIN, no COMMIT round trip (decision 0094).
    /// SQLite: SaveChanges in its own transaction.
    /// </summary>
    protected abstract bool ChangeIsOneCommand { get; }

    [Fact]
    public async Task DisplayNameChange_ThroughTheAdminApi_WithinStatementBudget()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AdminArrange.AccountAsync(platform, "eu", "us");
        var userId = await AdminArrange.UserAsync(platform, account, AdminArrange.Email("cost"), "member");
        var url = $"/admin/v1/accounts/{account}/users/{userId}";

        var logs = new CapturedLogs();
        var host = fixture.StartServer(settings =>
        {
            settings[$"Logging:{typeof(CapturedLogs).FullName}:LogLevel:Microsoft.EntityFrameworkCore.Database.Command"] = "Information";
            settings[$"Logging:{typeof(CapturedLogs).FullName}:LogLevel:Microsoft.EntityFrameworkCore.Database.Transaction"] = "Debug";
        }, logs);
        var client = host.Start();
        client.DefaultRequestHeaders.Authorization = platform.DefaultRequestHeaders.Authorization;

        for (var i = 0; i < 4; i++)
        {
            var etag = (await client.GetAsync(url)).Headers.ETag?.Tag;
            Assert.NotNull(etag);
            var before = Statements(logs).Count;
            var linesBefore = logs.Lines.Count();
            var response = await client.SendJsonAsync(HttpMethod.Patch, url, $$"""{"displayName":"Name {{i}}"}""", etag);
            var body = await ResponseAssert.StatusAsync(response, HttpStatusCode.OK);
            Assert.Equal($"Name {i}", body.GetProperty("displayName").GetString());
            var statements = Statements(logs)[before..];
            output.WriteLine($"{typeof(TDatabase).Name} change {i}: {statements.Count} statements\n  {string.Join("\n  ", statements)}");
            if (i > 0) // the first also reads the account's regions, which the user carries from then on
            {
                Assert.InRange(statements.Count, 1, Budget);
            }

            var lines = logs.Lines.Skip(linesBefore).ToList();
            var transactionLines = lines.Where(l => l.Contains("Database.Transaction", StringComparison.Ordinal)).ToList();
            if (ChangeIsOneCommand)
            {
                Assert.Empty(transactionLines);
                var write = Assert.Single(lines, l => l.Contains("Executed DbCommand", StringComparison.Ordinal) && l.Contains("UPDATE \"AspNetUsers\"", StringComparison.Ordinal));
                // One outbox row per region (eu, us) per audit entry; the log line holds the command twice (message, value).
                var audits = Regex.Count(write, "INSERT INTO \"AuditEntries\"");
                Assert.InRange(audits, 1, 2);
                Assert.Equal(2 * audits, Regex.Count(write, "INSERT INTO \"Outbox\""));
            }
            else
            {
                // The operation's transaction is its own: no savepoint around its SaveChanges.
                Assert.Contains(transactionLines, l => l.Contains("Committ", StringComparison.OrdinalIgnoreCase));
                Assert.DoesNotContain(transactionLines, l => l.Contains("savepoint", StringComparison.OrdinalIgnoreCase));
            }
        }
    }

    /// <summary>
    /// What the change tracker holds during a display-name change, the admin PATCH's operation as the server runs it
    /// (decision 0096): the user, tracked by the read the change starts from, and nothing else on PostgreSQL, where the
    /// audit entry and the outbox rows are written by the change's one command straight from the run (adding them to
    /// the context, scanning and detaching them cost ~8 % of the write path's CPU). SQLite's SaveChanges writes them
    /// tracked. Either way the rows are written, in their order, with the change.
    /// </summary>
    [Fact]
    public async Task DisplayNameChange_OnTheOneCommandPath_TracksTheUserOnly()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AdminArrange.AccountAsync(platform, "eu", "us");
        var userId = await AdminArrange.UserAsync(platform, account, AdminArrange.Email("tracked"), "member");
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var tracked = new List<string>();
        db.ChangeTracker.Tracked += (_, e) => tracked.Add(e.Entry.Metadata.ClrType.Name);
        var user = await db.Users.SingleAsync(u => u.Id == userId && u.AccountId == account);

        var result = await scope.ServiceProvider.GetRequiredService<UserOperations>()
            .ChangeProfileAsync(user, new ProfileChange(null, "Tracked once", null), new Actor("test", null, null, null), default);

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal(ChangeIsOneCommand ? ["ApplicationUser"] : ["ApplicationUser", "AuditEntry", "OutboxMessage", "OutboxMessage"], tracked);
        Assert.Equal(EntityState.Unchanged, db.Entry(user).State);
        await using var check = fixture.Server.Services.CreateAsyncScope();
        var checkDb = check.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var audit = await checkDb.AuditEntries.AsNoTracking().Where(a => a.SubjectId == userId && a.EventType == "user.updated").ToListAsync();
        Assert.Contains("Tracked once", Assert.Single(audit).Details, StringComparison.Ordinal);
        var rows = await checkDb.Outbox.AsNoTracking().Where(m => m.UserId == userId && m.MessageType == "UserChanged")
            .OrderBy(m => m.Id).ToListAsync();
        Assert.Equal(["eu", "us"], rows.Skip(rows.Count - 2).Select(m => m.Region).Order());
        Assert.All(rows.Skip(rows.Count - 2), m => Assert.Contains("Tracked once", m.Payload, StringComparison.Ordinal));
    }

    /// <summary>The SQL of every command the server executed so far, shortened.</summary>
    private static List<string> Statements(CapturedLogs logs) =>
        logs.Lines.Where(l => l.Contains("Microsoft.EntityFrameworkCore.Database.Command: Executed DbCommand", StringComparison.Ordinal))
            .Select(l => l[(l.IndexOf(']', l.IndexOf("CommandTimeout=", StringComparison.Ordinal)) + 1)..].ReplaceLineEndings(" ").Trim())
            .Select(sql => sql[..Math.Min(sql.Length, 300)])
            .ToList();
}

public sealed class SqliteUserChangeCostTests(ServerFixture<SqliteTestDatabase> fixture, ITestOutputHelper output)
    : UserChangeCostTests<SqliteTestDatabase>(fixture, output)
{
    protected override int Budget => 7;

    protected override bool ChangeIsOneCommand => false;
}

public sealed class PostgresUserChangeCostTests(ServerFixture<PostgresTestDatabase> fixture, ITestOutputHelper output)
    : UserChangeCostTests<PostgresTestDatabase>(fixture, output)
{
    protected override int Budget => 4;

    protected override bool ChangeIsOneCommand => true;
}
