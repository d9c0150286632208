using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Email;
using Identity.Core.Operations;
using Identity.Core.UnitTests.Operations;
using Identity.Core.Users;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Core.UnitTests.Users;

/// <summary>
/// The operations of emailed links at their home: the link stored hashed, the email queued, the change, the events and
/// the audit entry in one SaveChanges and one transaction (Fail mode: an escape would throw); the same run whether or
/// not an address is someone's.
/// </summary>
public sealed class UserLinkOperationsTests : IAsyncDisposable
{
    private const string NewPassword = "Another-Horse-Battery-7";
    private readonly OperationHost _host = new();

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    [Fact]
    public async Task RequestPasswordReset_KnownAddress_HashedLinkAndEmailAuditedInOneWrite()
    {
        var userId = await _host.UserAsync(await _host.AccountAsync("eu"), AccountRoles.Member);
        var email = await EmailOfAsync(userId);

        await RequestAsync(email);

        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        var token = await TokenSentToAsync(email, UserLinkPurposes.PasswordReset);
        await using var db = _host.PlainContext();
        var link = await db.UserLinks.SingleAsync(l => l.UserId == userId);
        Assert.NotEqual(token, link.TokenHash); // only the hash is stored
        Assert.Equal(UserLinks.Hash(token), link.TokenHash);
        Assert.Equal(TimeSpan.FromMinutes(30), link.ExpiresAt - link.CreatedAt);
        Assert.Equal("user.password_reset_requested", (await db.AuditEntries.SingleAsync()).EventType);
        Assert.Equal(1L, await db.Users.Where(u => u.Id == userId).Select(u => u.Version).SingleAsync()); // asking changes no user
    }

    [Fact]
    public async Task RequestPasswordReset_UnknownAddress_SameOneWriteNoLinkNoEmail()
    {
        await RequestAsync("nobody@example.test");

        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.False(await db.UserLinks.AnyAsync());
        Assert.False(await db.EmailMessages.AnyAsync());
        var audit = await db.AuditEntries.SingleAsync();
        Assert.Equal(("user.password_reset_refused", null), (audit.EventType, audit.SubjectId));
        Assert.Contains("unknown_address", audit.Details, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RequestPasswordReset_SecondRequest_VoidsTheFirstLink()
    {
        var userId = await _host.UserAsync(await _host.AccountAsync("eu"), AccountRoles.Member);
        var email = await EmailOfAsync(userId);
        await RequestAsync(email);
        var first = await TokenSentToAsync(email, UserLinkPurposes.PasswordReset);

        await RequestAsync(email);

        Assert.Equal(OperationOutcome.Invalid, (await ResetAsync(first, NewPassword)).Outcome);
        await using var db = _host.PlainContext();
        Assert.Equal(1, await db.UserLinks.CountAsync(l => l.EndedAt == null));
    }

    [Fact]
    public async Task RequestPasswordReset_OverThePerAddressLimit_NothingSentRefusalAudited()
    {
        var userId = await _host.UserAsync(await _host.AccountAsync("eu"), AccountRoles.Member);
        var email = await EmailOfAsync(userId);

        for (var i = 0; i < 3; i++)
        {
            await RequestAsync(email, perHour: 2);
        }

        await using var db = _host.PlainContext();
        Assert.Equal(2, await db.EmailMessages.CountAsync());
        Assert.Contains("throttled", (await db.AuditEntries.OrderBy(a => a.Id).LastAsync()).Details, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RequestPasswordReset_PolicyWithoutSelfService_NoLinkTheEmailSaysAskTheAdmin()
    {
        var account = await _host.AccountAsync("eu");
        await using (var arrange = _host.PlainContext())
        {
            await arrange.Accounts.Where(a => a.Id == account)
                .ExecuteUpdateAsync(a => a.SetProperty(x => x.Settings, """{"password":{"selfServiceReset":false}}"""));
        }

        var userId = await _host.UserAsync(account, AccountRoles.Member);

        await RequestAsync(await EmailOfAsync(userId));

        await using var db = _host.PlainContext();
        Assert.False(await db.UserLinks.AnyAsync());
        Assert.Equal("password_reset_not_allowed", (await db.EmailMessages.SingleAsync()).Kind);
    }

    [Fact]
    public async Task ResetPassword_ValidLink_PasswordSetSessionsEndVersionEventsAuditInOneWrite()
    {
        var userId = await _host.UserAsync(await _host.AccountAsync("eu", "us"), AccountRoles.Member);
        var email = await EmailOfAsync(userId);
        await RequestAsync(email);
        var token = await TokenSentToAsync(email, UserLinkPurposes.PasswordReset);

        var result = await ResetAsync(token, NewPassword);

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        var user = await db.Users.SingleAsync(u => u.Id == userId);
        Assert.Equal((2L, true), (user.Version, user.EmailConfirmed));
        Assert.NotNull(user.PasswordHash);
        Assert.Equal([("SessionsRevoked", "eu"), ("SessionsRevoked", "us"), ("UserChanged", "eu"), ("UserChanged", "us")],
            (await db.Outbox.Where(m => m.UserId == userId).ToListAsync()).Select(r => (r.MessageType, r.Region)).Order());
        Assert.Equal(["revoked"], await db.Set<OpenIddictEntityFrameworkCoreToken>().Where(t => t.Subject == userId).Select(t => t.Status).ToListAsync());
        Assert.Equal(["user.password_reset_requested", "user.password_reset"],
            await db.AuditEntries.Where(a => a.SubjectId == userId).OrderBy(a => a.Id).Select(a => a.EventType).ToListAsync());
        Assert.Equal(1, await db.EmailMessages.CountAsync(m => m.Kind == "password_reset_notice"));
        Assert.Equal(OperationOutcome.Invalid, (await ResetAsync(token, "Yet-Another-Horse-8")).Outcome); // once
    }

    [Fact]
    public async Task ResetPassword_PasswordRefused_NothingWrittenAndTheLinkStillWorks()
    {
        var userId = await _host.UserAsync(await _host.AccountAsync("eu"), AccountRoles.Member);
        var email = await EmailOfAsync(userId);
        await RequestAsync(email);
        var token = await TokenSentToAsync(email, UserLinkPurposes.PasswordReset);

        var refused = await ResetAsync(token, "short");

        Assert.True(refused.Errors!.ContainsKey("newPassword"));
        await using (var db = _host.PlainContext())
        {
            Assert.Null(await db.UserLinks.Select(l => l.EndedAt).SingleAsync());
            Assert.Equal(1L, await db.Users.Where(u => u.Id == userId).Select(u => u.Version).SingleAsync());
        }

        Assert.Equal(OperationResult.Done, await ResetAsync(token, NewPassword));
    }

    [Fact]
    public async Task ResetPassword_ExpiredLink_RefusedNothingWritten()
    {
        var userId = await _host.UserAsync(await _host.AccountAsync("eu"), AccountRoles.Member);
        var email = await EmailOfAsync(userId);
        await RequestAsync(email);
        var token = await TokenSentToAsync(email, UserLinkPurposes.PasswordReset);
        await using (var arrange = _host.PlainContext())
        {
            await arrange.UserLinks.ExecuteUpdateAsync(l => l.SetProperty(x => x.ExpiresAt, DateTimeOffset.UtcNow.AddSeconds(-1)));
        }

        var result = await ResetAsync(token, NewPassword);

        Assert.Equal([UserLinkOperations.LinkUnusable], result.Errors!["token"]);
        await using var db = _host.PlainContext();
        Assert.Equal(1L, await db.Users.Where(u => u.Id == userId).Select(u => u.Version).SingleAsync());
        Assert.False(await db.Outbox.AnyAsync());
    }

    [Fact]
    public async Task Invite_Emailed_LinkHashedEmailQueuedWithTheUserInOneWrite()
    {
        var account = await _host.AccountAsync("eu");
        await using var scope = _host.Scope();
        _host.Writes.Reset();

        var (result, user, token) = await scope.ServiceProvider.GetRequiredService<UserOperations>()
            .InviteAsync(new NewUser(account, "invited@example.test", null, AccountRoles.Member), OperationHost.Admin, default, sendEmail: true);

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        Assert.Equal(token, await TokenSentToAsync("invited@example.test", UserLinkPurposes.Invitation));
        await using var db = _host.PlainContext();
        Assert.Equal(UserLinks.Hash(token!), await db.UserLinks.Where(l => l.UserId == user.Id).Select(l => l.TokenHash).SingleAsync());
    }

    [Fact]
    public async Task AcceptInvitation_ResentLink_OldOneVoidNewOneSetsThePasswordOnce()
    {
        var account = await _host.AccountAsync("eu");
        Created created;
        await using (var scope = _host.Scope())
        {
            created = await scope.ServiceProvider.GetRequiredService<UserOperations>()
                .InviteAsync(new NewUser(account, "invited@example.test", null, AccountRoles.Member), OperationHost.Admin, default);
        }

        string second;
        await using (var scope = _host.Scope())
        {
            var user = await scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>().FindByIdAsync(created.User.Id);
            _host.Writes.Reset();
            (_, second) = await scope.ServiceProvider.GetRequiredService<UserLinkOperations>().ResendInvitationAsync(user!, sendEmail: true, OperationHost.Admin, default) is var (r, t) && r.Succeeded ? (r, t!) : throw new InvalidOperationException(r.ToString());
            Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        }

        Assert.Equal(OperationOutcome.Invalid, (await AcceptAsync(created.InvitationToken!, NewPassword)).Outcome);
        var accepted = await AcceptAsync(second, NewPassword);
        var again = await AcceptAsync(second, "Yet-Another-Horse-8");

        Assert.Equal(OperationResult.Done, accepted);
        Assert.Equal([UserLinkOperations.LinkUnusable], again.Errors!["token"]);
        await using var db = _host.PlainContext();
        var stored = await db.Users.SingleAsync(u => u.Id == created.User.Id);
        Assert.Equal((2L, true), (stored.Version, stored.EmailConfirmed));
        Assert.NotNull(stored.PasswordHash);
        Assert.Equal(["user.created", "user.invitation_sent", "user.invitation_accepted"],
            await db.AuditEntries.OrderBy(a => a.Id).Select(a => a.EventType).ToListAsync());
    }

    private async Task<OperationResult> AcceptAsync(string token, string password)
    {
        await using var scope = _host.Scope();
        return (await scope.ServiceProvider.GetRequiredService<UserLinkOperations>().AcceptInvitationAsync(token, password, Actor.Anonymous(null), default)).Result;
    }

    private async Task RequestAsync(string email, int perHour = 10)
    {
        await using var scope = _host.Scope();
        _host.Writes.Reset();
        await scope.ServiceProvider.GetRequiredService<UserLinkOperations>().RequestPasswordResetAsync(email, perHour, Actor.Anonymous("192.0.2.9"), default);
    }

    private async Task<OperationResult> ResetAsync(string token, string password)
    {
        await using var scope = _host.Scope();
        _host.Writes.Reset();
        return await scope.ServiceProvider.GetRequiredService<UserLinkOperations>().ResetPasswordAsync(token, password, Actor.Anonymous("192.0.2.9"), default);
    }

    private async Task<string> EmailOfAsync(string userId)
    {
        await using var db = _host.PlainContext();
        return await db.Users.Where(u => u.Id == userId).Select(u => u.Email!).SingleAsync();
    }

    /// <summary>The token in the latest queued email of <paramref name="kind"/> to <paramref name="to"/> (the test template is "kind token").</summary>
    private async Task<string> TokenSentToAsync(string to, string kind)
    {
        await using var scope = _host.Scope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var message = await db.EmailMessages.Where(m => m.To == to && m.Kind == kind).OrderBy(m => m.Id).LastAsync();
        return OutgoingEmail.Read(scope.ServiceProvider.GetRequiredService<IDataProtectionProvider>(), message).Text.Split(' ')[1];
    }
}
