using System.Text.Json;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.UnitTests.Operations;
using Identity.Core.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Core.UnitTests.Users;

/// <summary>Each user operation at its home: its rule, its version, its events and their routing, its audit entry, one write.</summary>
public sealed class UserOperationsTests : IAsyncDisposable
{
    private readonly OperationHost _host = new();

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    [Fact]
    public async Task Disable_ActiveMember_DisabledSessionsRevokedToItsRegionsInOneWrite()
    {
        var account = await _host.AccountAsync("eu");
        await _host.AccountAsync("us"); // another account's region gets nothing
        var userId = await _host.UserAsync(account, AccountRoles.Member);
        var stamp = await StampAsync(userId);

        var result = await RunAsync(userId, (o, u) => o.DisableAsync(u, OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        var user = await db.Users.SingleAsync(u => u.Id == userId);
        Assert.Equal((UserStatus.Disabled, 2L), (user.Status, user.Version));
        Assert.NotEqual(stamp, user.SecurityStamp);
        Assert.Equal(["revoked"], await db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreToken>()
            .Where(t => t.Subject == userId).Select(t => t.Status).ToListAsync());
        Assert.Equal(["revoked"], await db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreAuthorization>()
            .Where(t => t.Subject == userId).Select(t => t.Status).ToListAsync());
        var rows = await db.Outbox.Where(m => m.UserId == userId).OrderBy(m => m.MessageType).ToListAsync();
        Assert.Equal([("SessionsRevoked", "eu"), ("UserChanged", "eu")], rows.Select(r => (r.MessageType, r.Region)));
        Assert.Equal("user.disabled", JsonDocument.Parse(rows[0].Payload).RootElement.GetProperty("reason").GetString());
        Assert.Equal(2, JsonDocument.Parse(rows[1].Payload).RootElement.GetProperty("version").GetInt64());
        var audit = await db.AuditEntries.SingleAsync(a => a.SubjectId == userId);
        Assert.Equal(("user.disabled", "admin-1", account), (audit.EventType, audit.ActorId, audit.AccountId));
    }

    [Fact]
    public async Task Disable_LastActiveOwner_ConflictAndNothingWritten()
    {
        var account = await _host.AccountAsync("eu");
        var ownerId = await _host.UserAsync(account, AccountRoles.Owner);
        await _host.UserAsync(account, AccountRoles.Owner, UserStatus.Disabled); // a disabled owner does not count

        await using var scope = _host.Scope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var owner = await db.Users.SingleAsync(u => u.Id == ownerId);
        var result = await scope.ServiceProvider.GetRequiredService<UserOperations>().DisableAsync(owner, OperationHost.Admin, default);

        Assert.Equal(OperationOutcome.Conflict, result.Outcome);
        Assert.Equal(UserStatus.Active, owner.Status); // the tracked user is back as loaded: a later save writes nothing of it
        Assert.Equal(0, await db.SaveChangesAsync());
        await using var read = _host.PlainContext();
        Assert.Equal((UserStatus.Active, 1L), await read.Users.Where(u => u.Id == ownerId).Select(u => ValueTuple.Create(u.Status, u.Version)).SingleAsync());
        Assert.Equal(["valid"], await read.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreToken>()
            .Where(t => t.Subject == ownerId).Select(t => t.Status).ToListAsync());
        Assert.False(await read.Outbox.AnyAsync());
        Assert.False(await read.AuditEntries.AnyAsync());
    }

    [Fact]
    public async Task Enable_DisabledUser_ActiveWithoutRevokingAnything()
    {
        var account = await _host.AccountAsync("eu", "us");
        var userId = await _host.UserAsync(account, AccountRoles.Member, UserStatus.Disabled);

        var result = await RunAsync(userId, (o, u) => o.EnableAsync(u, OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.Equal((UserStatus.Active, 2L), await db.Users.Where(u => u.Id == userId).Select(u => ValueTuple.Create(u.Status, u.Version)).SingleAsync());
        Assert.Equal([("UserChanged", "eu"), ("UserChanged", "us")],
            (await db.Outbox.Where(m => m.UserId == userId).ToListAsync()).Select(r => (r.MessageType, r.Region)).Order());
        Assert.Equal(["valid"], await db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreToken>()
            .Where(t => t.Subject == userId).Select(t => t.Status).ToListAsync());
        Assert.Equal("user.enabled", (await db.AuditEntries.SingleAsync(a => a.SubjectId == userId)).EventType);
    }

    [Fact]
    public async Task RevokeSessions_ActiveUser_SessionsRevokedAndNoSnapshot()
    {
        var account = await _host.AccountAsync("eu");
        var userId = await _host.UserAsync(account, AccountRoles.Admin);

        var result = await RunAsync(userId, (o, u) => o.RevokeSessionsAsync(u, OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.Equal(2L, await db.Users.Where(u => u.Id == userId).Select(u => u.Version).SingleAsync());
        Assert.Equal([("SessionsRevoked", "eu")], (await db.Outbox.Where(m => m.UserId == userId).ToListAsync()).Select(r => (r.MessageType, r.Region)));
        Assert.Equal(["revoked"], await db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreToken>()
            .Where(t => t.Subject == userId).Select(t => t.Status).ToListAsync());
        Assert.Equal("user.sessions_revoked", (await db.AuditEntries.SingleAsync(a => a.SubjectId == userId)).EventType);
    }

    [Fact]
    public async Task Disable_UserChangedSinceLoaded_StaleAndNothingWritten()
    {
        var account = await _host.AccountAsync("eu");
        var userId = await _host.UserAsync(account, AccountRoles.Member);

        var result = await RunAsync(userId, async (o, u) =>
        {
            await using (var other = _host.PlainContext())
            {
                await other.Users.Where(x => x.Id == userId).ExecuteUpdateAsync(s => s.SetProperty(x => x.Version, 5));
            }

            return await o.DisableAsync(u, OperationHost.Admin, default);
        });

        Assert.Equal(OperationResult.Stale, result);
        await using var db = _host.PlainContext();
        Assert.Equal((UserStatus.Active, 5L), await db.Users.Where(u => u.Id == userId).Select(u => ValueTuple.Create(u.Status, u.Version)).SingleAsync());
        Assert.Equal(["valid"], await db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreToken>()
            .Where(t => t.Subject == userId).Select(t => t.Status).ToListAsync());
        Assert.False(await db.Outbox.AnyAsync());
        Assert.False(await db.AuditEntries.AnyAsync());
    }

    /// <summary>Loads the user in a request-like scope and runs the operation there, counting only the operation's writes.</summary>
    private async Task<OperationResult> RunAsync(string userId, Func<UserOperations, ApplicationUser, Task<OperationResult>> operation)
    {
        await using var scope = _host.Scope();
        var user = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.SingleAsync(u => u.Id == userId);
        _host.Writes.Reset();
        return await operation(scope.ServiceProvider.GetRequiredService<UserOperations>(), user);
    }

    private async Task<string?> StampAsync(string userId)
    {
        await using var db = _host.PlainContext();
        return await db.Users.Where(u => u.Id == userId).Select(u => u.SecurityStamp).SingleAsync();
    }
}
