using System.Text.Json;
using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.UnitTests.Operations;
using Identity.Core.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Core.UnitTests.Users;

/// <summary>
/// Each second-factor operation at its home: its rule, its version, the event its regions get (a snapshot when the
/// two-factor flag moved), its audit entry, one SaveChanges in one transaction — in Fail mode, so an escape would throw.
/// </summary>
public sealed class SecondFactorEnrolmentTests : IAsyncDisposable
{
    private readonly OperationHost _host = new();

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    [Fact]
    public async Task EnrolTotp_ValidCode_FlagOnSnapshotToItsRegionsAuditedInOneWrite()
    {
        var userId = await _host.UserAsync(await _host.AccountAsync("eu", "us"), AccountRoles.Member);

        var (result, codes) = await RunAsync(userId, (o, u) => o.EnrolTotpAsync(u, TestSecondFactors.ValidCode, Me(userId), default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal(2, codes!.Count);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.Equal((true, 2L), await db.Users.Where(u => u.Id == userId).Select(u => ValueTuple.Create(u.TwoFactorEnabled, u.Version)).SingleAsync());
        Assert.Equal(2, await db.UserTokens.CountAsync(t => t.UserId == userId)); // the secret and the recovery codes, in the same write
        var rows = await db.Outbox.Where(m => m.UserId == userId).OrderBy(m => m.Region).ToListAsync();
        Assert.Equal([("UserChanged", "eu"), ("UserChanged", "us")], rows.Select(r => (r.MessageType, r.Region)));
        Assert.True(JsonDocument.Parse(rows[0].Payload).RootElement.GetProperty("mfaEnrolled").GetBoolean());
        var audit = await db.AuditEntries.SingleAsync(a => a.SubjectId == userId);
        Assert.Equal(("mfa.totp_enrolled", "user", userId), (audit.EventType, audit.ActorType, audit.ActorId));
    }

    [Fact]
    public async Task EnrolTotp_WrongCode_InvalidAndNothingWritten()
    {
        var userId = await _host.UserAsync(await _host.AccountAsync("eu"), AccountRoles.Member);

        var (result, codes) = await RunAsync(userId, (o, u) => o.EnrolTotpAsync(u, "000000", Me(userId), default));

        Assert.Equal([SecondFactorEnrolment.CodeRefused], result.Errors!["code"]);
        Assert.Null(codes);
        Assert.Equal(0, _host.Writes.SaveChanges);
        await using var db = _host.PlainContext();
        Assert.Equal((false, 1L), await db.Users.Where(u => u.Id == userId).Select(u => ValueTuple.Create(u.TwoFactorEnabled, u.Version)).SingleAsync());
        Assert.False(await db.UserTokens.AnyAsync());
        Assert.False(await db.Outbox.AnyAsync());
        Assert.False(await db.AuditEntries.AnyAsync());
    }

    [Fact]
    public async Task RegenerateRecoveryCodes_EnrolledUser_NewCodesAuditedWithoutVersionOrEvent()
    {
        var userId = await _host.UserAsync(await _host.AccountAsync("eu"), AccountRoles.Member);
        var (_, first) = await RunAsync(userId, (o, u) => o.EnrolTotpAsync(u, TestSecondFactors.ValidCode, Me(userId), default));

        var (result, codes) = await RunAsync(userId, (o, u) => o.RegenerateRecoveryCodesAsync(u, Me(userId), default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.Equal(string.Join(',', codes!), await db.UserTokens.Where(t => t.UserId == userId && t.Name == "RecoveryCodes").Select(t => t.Value).SingleAsync());
        Assert.NotEqual(first, codes);
        Assert.Equal(2L, await db.Users.Where(u => u.Id == userId).Select(u => u.Version).SingleAsync()); // no region or admin sees the codes
        Assert.Equal(1, await db.Outbox.CountAsync(m => m.UserId == userId)); // the enrolment's snapshot only
        Assert.Equal(["mfa.totp_enrolled", "mfa.recovery_codes_regenerated"],
            await db.AuditEntries.Where(a => a.SubjectId == userId).OrderBy(a => a.Id).Select(a => a.EventType).ToListAsync());
    }

    [Fact]
    public async Task AddPasskey_FirstFactor_StoredFlagOnSnapshotAuditedByNameInOneWrite()
    {
        var userId = await _host.UserAsync(await _host.AccountAsync("eu"), AccountRoles.Member);
        var stamp = await StampAsync(userId);

        var result = await RunAsync(userId, (o, u) => o.AddPasskeyAsync(u, Passkey("Laptop", 1), Me(userId), default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.Equal((true, 2L), await db.Users.Where(u => u.Id == userId).Select(u => ValueTuple.Create(u.TwoFactorEnabled, u.Version)).SingleAsync());
        Assert.NotEqual(stamp, await StampAsync(userId)); // the user's other sessions end at their next validation
        Assert.Equal(1, await PasskeysAsync(userId));
        var row = await db.Outbox.SingleAsync(m => m.UserId == userId);
        Assert.Equal(("UserChanged", "eu", true), (row.MessageType, row.Region, JsonDocument.Parse(row.Payload).RootElement.GetProperty("mfaEnrolled").GetBoolean()));
        var audit = await db.AuditEntries.SingleAsync(a => a.SubjectId == userId);
        Assert.Equal("mfa.passkey_added", audit.EventType);
        Assert.Equal("Laptop", JsonDocument.Parse(audit.Details!).RootElement.GetProperty("name").GetString());
    }

    [Fact]
    public async Task RemovePasskey_OneOfTwoThenTheLast_FlagStaysThenGoesOffWithItsSnapshot()
    {
        var userId = await _host.UserAsync(await _host.AccountAsync("eu"), AccountRoles.Member);
        await RunAsync(userId, (o, u) => o.AddPasskeyAsync(u, Passkey("Laptop", 1), Me(userId), default));
        await RunAsync(userId, (o, u) => o.AddPasskeyAsync(u, Passkey("Phone", 2), Me(userId), default));

        var first = await RunAsync(userId, (o, u) => o.RemovePasskeyAsync(u, [1, 1, 1, 1], Me(userId), default));
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        var unknown = await RunAsync(userId, (o, u) => o.RemovePasskeyAsync(u, [9, 9, 9, 9], Me(userId), default));
        Assert.Equal(0, _host.Writes.SaveChanges);
        var last = await RunAsync(userId, (o, u) => o.RemovePasskeyAsync(u, [2, 2, 2, 2], Me(userId), default));
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));

        Assert.Equal((OperationResult.Done, "Laptop"), first);
        Assert.Equal((OperationResult.Done, (string?)null), unknown);
        Assert.Equal((OperationResult.Done, "Phone"), last);
        await using var db = _host.PlainContext();
        Assert.Equal((false, 5L), await db.Users.Where(u => u.Id == userId).Select(u => ValueTuple.Create(u.TwoFactorEnabled, u.Version)).SingleAsync());
        Assert.Equal(0, await PasskeysAsync(userId));
        var snapshots = (await db.Outbox.Where(m => m.UserId == userId).OrderBy(m => m.Id).ToListAsync())
            .Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .Select(p => (p.GetProperty("version").GetInt64(), p.GetProperty("mfaEnrolled").GetBoolean()));
        Assert.Equal([(2L, true), (5L, false)], snapshots); // the second passkey and the first removal moved no flag: no event
        Assert.Equal(["mfa.passkey_added", "mfa.passkey_added", "mfa.passkey_removed", "mfa.passkey_removed"],
            await db.AuditEntries.Where(a => a.SubjectId == userId).OrderBy(a => a.Id).Select(a => a.EventType).ToListAsync());
    }

    private static Actor Me(string userId) => new("user", userId, null, "192.0.2.7");

    private static UserPasskeyInfo Passkey(string name, byte id) =>
        new([id, id, id, id], [4, 5, 6], DateTimeOffset.UtcNow, 0, ["internal"], isUserVerified: true, isBackupEligible: false, isBackedUp: false,
            attestationObject: [7], clientDataJson: [8]) { Name = name };

    private async Task<T> RunAsync<T>(string userId, Func<SecondFactorEnrolment, ApplicationUser, Task<T>> operation)
    {
        await using var scope = _host.Scope();
        var user = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.SingleAsync(u => u.Id == userId);
        _host.Writes.Reset();
        return await operation(scope.ServiceProvider.GetRequiredService<SecondFactorEnrolment>(), user);
    }

    /// <summary>Read on the host's own context: passkeys are in the model of Identity's schema version 3, which it configures.</summary>
    private async Task<int> PasskeysAsync(string userId)
    {
        await using var scope = _host.Scope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Set<IdentityUserPasskey<string>>().CountAsync(p => p.UserId == userId);
    }

    private async Task<string?> StampAsync(string userId)
    {
        await using var db = _host.PlainContext();
        return await db.Users.Where(u => u.Id == userId).Select(u => u.SecurityStamp).SingleAsync();
    }
}
