using System.Net;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Admin;

/// <summary>
/// Thirty user changes through the admin API at once, on many users and on one: each request gets a correct answer —
/// 200, or 409/412 when another change to the same user came first — never a 500, and what was answered 200 is written
/// (state, version, audit entry, event). On SQLite (the embedded default: shared cache, WAL, one writer at a time) the
/// writers queue: each run's transaction begins IMMEDIATE (Microsoft.Data.Sqlite's default), so no two runs can each hold
/// a read lock the other needs, and the provider retries a busy or locked statement until its command timeout (30 s).
/// </summary>
public abstract class ConcurrentUserChangesTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    [Fact]
    public async Task ThirtyUserChanges_AtOnceOnTwentyUsersAndOne_EachAnsweredWithoutServerErrorAndWritten()
    {
        // The server as deployed: on SQLite the embedded default's connection string (shared cache, pooled connections).
        await using var server = fixture.StartServer(s => s["Database:ConnectionString"] = DeployedConnectionString(fixture.Database.ConnectionString));
        using var platform = server.CreateClient();
        platform.DefaultRequestHeaders.Authorization = (await fixture.PlatformAdminAsync()).DefaultRequestHeaders.Authorization;
        var account = await AdminArrange.AccountAsync(platform, "eu");
        var users = $"/admin/v1/accounts/{account}/users";
        var disabled = new List<string>();
        var renamed = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            disabled.Add(await AdminArrange.UserAsync(platform, account, AdminArrange.Email("disabled"), AccountRoles.Member));
            renamed.Add(await AdminArrange.UserAsync(platform, account, AdminArrange.Email("renamed"), AccountRoles.Member));
        }

        var shared = await AdminArrange.UserAsync(platform, account, AdminArrange.Email("shared"), AccountRoles.Member);

        // All thirty start together: ten disables and ten renames of different users, five renames of one user from its
        // first version and five revocations of its sessions.
        using var start = new SemaphoreSlim(0);
        var requests = disabled.Select(id => Send(start, () => platform.PostAsync($"{users}/{id}/disable", null)))
            .Concat(renamed.Select(id => Send(start, () => platform.SendJsonAsync(HttpMethod.Patch, $"{users}/{id}", """{"displayName":"Renamed"}""", "\"1\""))))
            .Concat(Enumerable.Range(0, 5).Select(i => Send(start, () => platform.SendJsonAsync(HttpMethod.Patch, $"{users}/{shared}",
                $$"""{"displayName":"Shared {{i}}"}""", "\"1\""))))
            .Concat(Enumerable.Range(0, 5).Select(_ => Send(start, () => platform.PostAsync($"{users}/{shared}/revoke-sessions", null))))
            .ToList();
        start.Release(requests.Count);
        var answers = await Task.WhenAll(requests);

        var statuses = answers.Select(a => a.Status).ToList();
        Assert.All(answers, a => Assert.True(a.Status is HttpStatusCode.OK or HttpStatusCode.Conflict or HttpStatusCode.PreconditionFailed,
            $"{a.Status}: {a.Body}"));
        Assert.All(statuses.Take(20), s => Assert.Equal(HttpStatusCode.OK, s)); // nobody else changed these users
        var sharedDone = statuses.Skip(20).Count(s => s == HttpStatusCode.OK);
        Assert.InRange(statuses.Skip(20).Take(5).Count(s => s == HttpStatusCode.OK), 0, 1); // one version 1, at most one rename from it

        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var written = await db.Users.AsNoTracking().Where(u => u.AccountId == account)
            .ToDictionaryAsync(u => u.Id, u => (u.Status, u.DisplayName, u.Version));
        Assert.All(disabled, id => Assert.Equal((UserStatus.Disabled, 2L), (written[id].Status, written[id].Version)));
        Assert.All(renamed, id => Assert.Equal(("Renamed", 2L), (written[id].DisplayName, written[id].Version)));
        Assert.Equal(1 + sharedDone, written[shared].Version);
        var audited = await db.AuditEntries.AsNoTracking().Where(a => a.AccountId == account && a.SubjectType == "user" && a.EventType != "user.created")
            .GroupBy(a => a.SubjectId!).Select(g => new { g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Key, g => g.Count);
        Assert.Equal(20 + (sharedDone > 0 ? 1 : 0), audited.Count);
        Assert.Equal(sharedDone, audited.GetValueOrDefault(shared));
        Assert.Equal(10, await db.Outbox.CountAsync(m => m.MessageType == "SessionsRevoked" && disabled.Contains(m.UserId!)));
    }

    /// <summary>The connection string as a deployment has it (the test databases' may differ in pooling).</summary>
    protected virtual string DeployedConnectionString(string testConnectionString) => testConnectionString;

    private static async Task<(HttpStatusCode Status, string Body)> Send(SemaphoreSlim start, Func<Task<HttpResponseMessage>> request)
    {
        await Task.Yield();
        await start.WaitAsync();
        using var response = await request();
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}

public sealed class SqliteConcurrentUserChangesTests(ServerFixture<SqliteTestDatabase> fixture) : ConcurrentUserChangesTests<SqliteTestDatabase>(fixture)
{
    /// <summary>What <c>DatabaseOptions</c> writes for the embedded default: <c>Data Source=…;Cache=Shared</c>, pooled.</summary>
    protected override string DeployedConnectionString(string testConnectionString) =>
        testConnectionString.Replace(";Pooling=False", "", StringComparison.Ordinal);
}

public sealed class PostgresConcurrentUserChangesTests(ServerFixture<PostgresTestDatabase> fixture) : ConcurrentUserChangesTests<PostgresTestDatabase>(fixture);
