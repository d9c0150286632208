using Identity.Core.Data;
using Identity.Core.Policies;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Account;

/// <summary>
/// The account's password rules (<see cref="PasswordRules"/>) wherever a password is set: admin API, reset, the
/// change-password page. The history is the current hash plus the stored previous ones, most recent first.
/// </summary>
public sealed class PasswordPolicyValidator(AccountPolicies policies, AuthorityDbContext db) : IPasswordValidator<ApplicationUser>
{
    private (ApplicationUser User, string HashBefore)? _validated;

    /// <summary>
    /// The hash <paramref name="user"/> had when a new password was last validated for them ("" for none), once:
    /// the user manager compares it with the hash being saved to tell a new password from other updates.
    /// </summary>
    public string? TakeValidated(ApplicationUser user)
    {
        if (_validated is not { } validated || !ReferenceEquals(validated.User, user))
        {
            return null;
        }

        _validated = null;
        return validated.HashBefore;
    }

    public async Task<IdentityResult> ValidateAsync(UserManager<ApplicationUser> manager, ApplicationUser user, string? password)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(user);
        _validated = (user, user.PasswordHash ?? "");
        var policy = (await policies.ForAsync(user)).Password;
        var previous = policy.History == 0 ? [] : await db.PasswordHistory.AsNoTracking()
            .Where(h => h.UserId == user.Id)
            .OrderByDescending(h => h.SetAt).ThenByDescending(h => h.Id)
            .Select(h => h.PasswordHash)
            .Take(policy.History)
            .ToListAsync();
        if (user.PasswordHash is { } current)
        {
            previous.Insert(0, current);
        }

        var violations = PasswordRules.Check(password ?? "", policy, previous.Distinct(StringComparer.Ordinal),
            (candidate, hash) => manager.PasswordHasher.VerifyHashedPassword(user, hash, candidate) != PasswordVerificationResult.Failed);
        return violations.Count == 0
            ? IdentityResult.Success
            : IdentityResult.Failed([.. violations.Select(v => new IdentityError { Code = v.Code, Description = v.Message })]);
    }
}
