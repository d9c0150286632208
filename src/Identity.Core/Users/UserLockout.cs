using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;

namespace Identity.Core.Users;

/// <summary>
/// Locking a user out after too many failed attempts: the user operation that ASP.NET Core Identity's user manager calls
/// (so it lives apart from <see cref="UserOperations"/>, which uses that manager). The failed attempts themselves are
/// counted on the stored row by the manager (decision 0037); reaching the account's limit ends here.
/// </summary>
public sealed class UserLockout(ChangeUnit changes)
{
    /// <summary>The one who locks a user out: the authority itself, at a failed sign-in.</summary>
    public static readonly Actor System = new("system", null, null, null);

    /// <summary>
    /// The user is locked out until <paramref name="until"/>, the count of failures starts again, and the user's regions
    /// learn it (<c>lockedOutUntil</c>). Stale when another change to the user came first (most likely a concurrent failure
    /// locking it out): the caller reads the user again.
    /// </summary>
    public Task<OperationResult> LockOutAsync(ApplicationUser user, DateTimeOffset until, CancellationToken cancellationToken) =>
        changes.RunAsync(System, change =>
        {
            user.LockoutEnd = until;
            user.AccessFailedCount = 0;
            change.Changed(user);
            change.Audit("user.locked_out", user, new { until });
            return Task.FromResult(OperationResult.Done);
        }, cancellationToken);
}
