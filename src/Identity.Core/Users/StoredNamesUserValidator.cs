using Identity.Core.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Identity.Core.Users;

/// <summary>
/// ASP.NET Core Identity's user validator (the user name's characters, the email's form, both unique), which looks both
/// names up in the database on every update — two statements per user change, though most changes (a display name, a
/// role, a status, a stamp) touch neither. A user this context loaded whose user name and email are still the ones it
/// read from the database was valid when stored and is unique as before: the names a user keeps are not checked again
/// (decision 0092). A new user, a detached one, or one whose name or email changed is validated in full.
/// </summary>
public sealed class StoredNamesUserValidator(AuthorityDbContext db, IdentityErrorDescriber? errors = null)
    : UserValidator<ApplicationUser>(errors)
{
    public override Task<IdentityResult> ValidateAsync(UserManager<ApplicationUser> manager, ApplicationUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return KeepsStoredNames(user) ? Task.FromResult(IdentityResult.Success) : base.ValidateAsync(manager, user);
    }

    private bool KeepsStoredNames(ApplicationUser user)
    {
        // The entry without change detection: its original values are what was read, whether or not the user's changes
        // were detected yet (Unchanged then stands for Modified), and a scan of every property per change is saved.
        // Properties by name: a lambda would build an expression tree per call (both: 4 % of the write path, perf).
        var tracker = db.ChangeTracker;
        var detect = tracker.AutoDetectChangesEnabled;
        tracker.AutoDetectChangesEnabled = false;
        try
        {
            var entry = db.Entry(user); // Detached when this context does not track it
            return entry.State is EntityState.Unchanged or EntityState.Modified
                && string.Equals((string?)entry.Property(nameof(ApplicationUser.UserName)).OriginalValue, user.UserName, StringComparison.Ordinal)
                && string.Equals((string?)entry.Property(nameof(ApplicationUser.Email)).OriginalValue, user.Email, StringComparison.Ordinal);
        }
        finally
        {
            tracker.AutoDetectChangesEnabled = detect;
        }
    }
}

public static class StoredNamesUserValidatorExtensions
{
    /// <summary>
    /// Puts <see cref="StoredNamesUserValidator"/> in the place of ASP.NET Core Identity's own user validator (call after
    /// <c>AddIdentityCore</c>), so that a user keeping its names is not looked up twice per change.
    /// </summary>
    public static IServiceCollection AddAuthorityUserValidator(this IServiceCollection services) =>
        services.Replace(ServiceDescriptor.Scoped<IUserValidator<ApplicationUser>, StoredNamesUserValidator>());
}
