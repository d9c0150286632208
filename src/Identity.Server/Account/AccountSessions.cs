using Identity.Core.Audit;
using System.Globalization;
using Identity.Core.Data;
using Identity.Server.Audit;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Identity;

namespace Identity.Server.Account;

/// <summary>
/// The account's <c>session.lifetime</c> (since sign-in, the session's auth_time) and <c>session.idleTimeout</c>
/// (since the session was last used), checked each time the SSO cookie is used, against the policy in force then:
/// a policy change applies to existing sessions at their next use. The last use is kept in the cookie and refreshed
/// at most every tenth of the idle timeout (and at least every minute), so a session may end that much early. An ended
/// session is audited (<c>session.ended</c>, with the reason).
/// </summary>
public static class AccountSessions
{
    /// <summary>The cookie's item holding the last use, ISO 8601 UTC.</summary>
    public const string LastSeenItem = ".lastSeen";

    public static async Task ValidateAsync(CookieValidatePrincipalContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Principal is not { } principal)
        {
            return;
        }

        var services = context.HttpContext.RequestServices;
        var user = await services.GetRequiredService<DirectoryCache>().UserAsync(services.GetRequiredService<AuthorityDbContext>(),
            services.GetRequiredService<UserManager<ApplicationUser>>().GetUserId(principal), context.HttpContext.RequestAborted);
        if (user is null)
        {
            return; // not a session of a known user: the security stamp validation ends it
        }

        var policy = (await services.GetRequiredService<AccountPolicies>().ForAsync(user, context.HttpContext.RequestAborted)).Session;
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        var issued = context.Properties.IssuedUtc ?? now;
        var started = principal.GetAuthTime() ?? issued;
        var lastSeen = LastSeen(context.Properties) ?? issued;
        var reason = now - started >= policy.Lifetime ? "lifetime" : now - lastSeen >= policy.IdleTimeout ? "idle_timeout" : null;
        if (reason is not null)
        {
            services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(AccountSessions))
                .LogInformation("Session of user {UserId} ended ({Reason})", user.Id, reason);
            // Audited: the account's policy, not the user, ended it.
            services.GetRequiredService<IAuditTrail>().Record(
                new Actor("system", null, null, context.HttpContext.Connection.RemoteIpAddress?.ToString()),
                "session.ended", "user", user.Id, user.AccountId, new { reason, sessionId = principal.FindFirst(SessionClaims.SessionId)?.Value });
            await services.GetRequiredService<AuthorityDbContext>().SaveChangesAsync(context.HttpContext.RequestAborted);
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(context.Scheme.Name);
            return;
        }

        if (now - lastSeen >= TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(1).Ticks, policy.IdleTimeout.Ticks / 10)))
        {
            context.Properties.Items[LastSeenItem] = now.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);
            context.ShouldRenew = true; // the cookie is issued again with the new last use
        }
    }

    private static DateTimeOffset? LastSeen(AuthenticationProperties properties) =>
        properties.Items.TryGetValue(LastSeenItem, out var value)
        && DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
            ? at
            : null;
}
