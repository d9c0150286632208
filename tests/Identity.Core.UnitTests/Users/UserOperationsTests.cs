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

    [Fact]
    public async Task Create_NewMember_SnapshotToItsRegionsAuditedInOneWrite()
    {
        var account = await _host.AccountAsync("eu");
        await using var scope = _host.Scope();
        _host.Writes.Reset();

        var (result, user, invitation) = await scope.ServiceProvider.GetRequiredService<UserOperations>()
            .CreateAsync(new NewUser(account, " new@example.test ", "New", AccountRoles.Member), "Correct-Horse-Battery-9", OperationHost.Admin, default);

        Assert.Equal((OperationResult.Done, (string?)null), (result, invitation));
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        var stored = await db.Users.SingleAsync(u => u.Id == user.Id);
        Assert.Equal(("new@example.test", 1L), (stored.Email, stored.Version));
        Assert.NotNull(stored.PasswordHash);
        var row = await db.Outbox.SingleAsync(m => m.UserId == user.Id);
        Assert.Equal(("UserChanged", "eu"), (row.MessageType, row.Region));
        Assert.Equal("user.created", (await db.AuditEntries.SingleAsync(a => a.SubjectId == user.Id)).EventType);
    }

    [Fact]
    public async Task Create_UserOfNoAccountBySystem_ConfirmedAuditedNoRegionToldInOneWrite()
    {
        await _host.AccountAsync("eu"); // a region exists, and hears nothing of a user of no account
        await using var scope = _host.Scope();
        _host.Writes.Reset();

        var (result, user, _) = await scope.ServiceProvider.GetRequiredService<UserOperations>()
            .CreateAsync(new NewUser(null, "demo@example.test", "Demo", null, EmailConfirmed: true), "Correct-Horse-Battery-9", UserLockout.System, default);

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        var stored = await db.Users.SingleAsync(u => u.Id == user.Id);
        Assert.Equal(((Guid?)null, (string?)null, true, 1L), (stored.AccountId, stored.Role, stored.EmailConfirmed, stored.Version));
        Assert.False(await db.Outbox.AnyAsync());
        var audit = await db.AuditEntries.SingleAsync(a => a.SubjectId == user.Id);
        Assert.Equal(("user.created", "system", (Guid?)null), (audit.EventType, audit.ActorType, audit.AccountId));
    }

    [Fact]
    public async Task Invite_EmailOfAnotherUser_InvalidAndNothingWritten()
    {
        var account = await _host.AccountAsync("eu");
        var takenId = await _host.UserAsync(account, AccountRoles.Member);
        await using var scope = _host.Scope();
        var operations = scope.ServiceProvider.GetRequiredService<UserOperations>();
        string taken;
        await using (var read = _host.PlainContext())
        {
            taken = (await read.Users.SingleAsync(u => u.Id == takenId)).Email!;
        }

        var refused = await operations.InviteAsync(new NewUser(account, taken.ToUpperInvariant(), null, AccountRoles.Member), OperationHost.Admin, default);
        var invited = await operations.InviteAsync(new NewUser(account, "invited@example.test", null, AccountRoles.Member), OperationHost.Admin, default);

        Assert.Equal(OperationOutcome.Invalid, refused.Result.Outcome);
        Assert.Equal([UserOperations.EmailInUse], refused.Result.Errors!["email"]);
        Assert.Null(refused.InvitationToken);
        Assert.True(invited.Result.Succeeded);
        Assert.False(string.IsNullOrEmpty(invited.InvitationToken));
        await using var db = _host.PlainContext();
        Assert.Equal(2, await db.Users.CountAsync());
        Assert.Equal([invited.User.Id], await db.AuditEntries.Select(a => a.SubjectId).ToListAsync());
    }

    [Fact]
    public async Task ChangeProfile_OwnerDemotedWhileAnotherOwnerIsActive_VersionAndSnapshotAuditedBeforeAndAfter()
    {
        var account = await _host.AccountAsync("eu");
        var ownerId = await _host.UserAsync(account, AccountRoles.Owner);
        var lastOwnerId = await _host.UserAsync(account, AccountRoles.Owner);

        var demoted = await RunAsync(ownerId, (o, u) => o.ChangeProfileAsync(u, new ProfileChange("renamed@example.test", " Ada ", AccountRoles.Member), OperationHost.Admin, default));
        var refused = await RunAsync(lastOwnerId, (o, u) => o.ChangeProfileAsync(u, new ProfileChange(null, null, AccountRoles.Admin), OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, demoted);
        Assert.Equal(OperationOutcome.Conflict, refused.Outcome);
        await using var db = _host.PlainContext();
        var user = await db.Users.SingleAsync(u => u.Id == ownerId);
        Assert.Equal(("renamed@example.test", "RENAMED@EXAMPLE.TEST", "Ada", AccountRoles.Member, false, 2L),
            (user.Email, user.NormalizedEmail, user.DisplayName, user.Role, user.EmailConfirmed, user.Version));
        Assert.Equal(AccountRoles.Owner, await db.Users.Where(u => u.Id == lastOwnerId).Select(u => u.Role).SingleAsync());
        Assert.Equal(["UserChanged"], await db.Outbox.Where(m => m.UserId == ownerId).Select(m => m.MessageType).ToListAsync());
        var details = JsonDocument.Parse((await db.AuditEntries.SingleAsync(a => a.SubjectId == ownerId)).Details!).RootElement;
        Assert.Equal((AccountRoles.Owner, AccountRoles.Member), (details.GetProperty("before").GetProperty("role").GetString(),
            details.GetProperty("after").GetProperty("role").GetString()));
        Assert.False(await db.AuditEntries.AnyAsync(a => a.SubjectId == lastOwnerId));
    }

    [Fact]
    public async Task ChangePassword_WrongCurrentThenRight_RefusedUnderCurrentPasswordThenSessionsRevokedWithoutSnapshot()
    {
        var account = await _host.AccountAsync("eu");
        var created = await CreateAsync(account, "Correct-Horse-Battery-9");
        var actor = new Audit.Actor("user", created, null, null);

        var wrong = await RunAsync(created, (o, u) => o.ChangePasswordAsync(u, "not-it", "Another-Horse-Battery-8", actor, null, default));
        var right = await RunAsync(created, (o, u) => o.ChangePasswordAsync(u, "Correct-Horse-Battery-9", "Another-Horse-Battery-8", actor, new { expired = false }, default));

        Assert.Equal(["currentPassword"], wrong.Errors!.Keys);
        Assert.Equal(OperationResult.Done, right);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.Equal(1L, await db.Users.Where(u => u.Id == created).Select(u => u.Version).SingleAsync()); // no region sees a password
        Assert.Equal(["SessionsRevoked"], await db.Outbox.Where(m => m.UserId == created && m.MessageType != "UserChanged").Select(m => m.MessageType).ToListAsync());
        Assert.Equal(["user.password_changed"], await db.AuditEntries.Where(a => a.SubjectId == created && a.EventType != "user.created").Select(a => a.EventType).ToListAsync());
    }

    [Fact]
    public async Task ResetMfa_EnrolledUser_FlagOffSnapshotAndSessionsRevoked()
    {
        var account = await _host.AccountAsync("eu");
        var userId = await _host.UserAsync(account, AccountRoles.Member);
        await using (var arrange = _host.PlainContext())
        {
            await arrange.Users.Where(u => u.Id == userId).ExecuteUpdateAsync(s => s.SetProperty(u => u.TwoFactorEnabled, true));
        }

        var result = await RunAsync(userId, (o, u) => o.ResetMfaAsync(u, OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.Equal((false, 2L), await db.Users.Where(u => u.Id == userId).Select(u => ValueTuple.Create(u.TwoFactorEnabled, u.Version)).SingleAsync());
        Assert.Equal(["UserChanged", "SessionsRevoked"], await db.Outbox.Where(m => m.UserId == userId).OrderBy(m => m.Id).Select(m => m.MessageType).ToListAsync());
        Assert.Equal("user.mfa_reset", (await db.AuditEntries.SingleAsync(a => a.SubjectId == userId)).EventType);
    }

    [Fact]
    public async Task Delete_Member_GoneTokensRevokedDeletionNewerThanAnySnapshot()
    {
        var account = await _host.AccountAsync("eu");
        var userId = await _host.UserAsync(account, AccountRoles.Member);

        var result = await RunAsync(userId, (o, u) => o.DeleteAsync(u, OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.False(await db.Users.AnyAsync(u => u.Id == userId));
        Assert.Equal(["revoked"], await db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreToken>()
            .Where(t => t.Subject == userId).Select(t => t.Status).ToListAsync());
        var row = await db.Outbox.SingleAsync(m => m.UserId == userId);
        Assert.Equal(("UserDeleted", "eu", 2L), (row.MessageType, row.Region, JsonDocument.Parse(row.Payload).RootElement.GetProperty("version").GetInt64()));
        Assert.Equal("user.deleted", (await db.AuditEntries.SingleAsync(a => a.SubjectId == userId)).EventType);
    }

    [Fact]
    public async Task LockOut_Member_LockedUntilCountClearedRegionsToldAudited()
    {
        var account = await _host.AccountAsync("eu");
        var userId = await _host.UserAsync(account, AccountRoles.Member);
        var until = DateTimeOffset.UtcNow.AddMinutes(10);

        await using var scope = _host.Scope();
        var user = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.SingleAsync(u => u.Id == userId);
        user.AccessFailedCount = 5;
        _host.Writes.Reset();
        var result = await scope.ServiceProvider.GetRequiredService<UserLockout>().LockOutAsync(user, until, default);

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        var stored = await db.Users.SingleAsync(u => u.Id == userId);
        Assert.Equal((0, 2L), (stored.AccessFailedCount, stored.Version));
        Assert.Equal(until.ToUnixTimeSeconds(), stored.LockoutEnd!.Value.ToUnixTimeSeconds());
        var row = await db.Outbox.SingleAsync(m => m.UserId == userId);
        Assert.True(JsonDocument.Parse(row.Payload).RootElement.GetProperty("lockedOutUntil").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(9));
        var audit = await db.AuditEntries.SingleAsync(a => a.SubjectId == userId);
        Assert.Equal(("user.locked_out", "system"), (audit.EventType, audit.ActorType));
    }

    private async Task<string> CreateAsync(Guid account, string password)
    {
        await using var scope = _host.Scope();
        var created = await scope.ServiceProvider.GetRequiredService<UserOperations>()
            .CreateAsync(new NewUser(account, $"pw-{Guid.NewGuid():n}@example.test", null, AccountRoles.Member), password, OperationHost.Admin, default);
        Assert.True(created.Result.Succeeded);
        return created.User.Id;
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
