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
        var entry = db.Entry(user); // Detached when this context does not track it
        return entry.State is EntityState.Unchanged or EntityState.Modified
            && string.Equals(entry.Property(u => u.UserName).OriginalValue, user.UserName, StringComparison.Ordinal)
            && string.Equals(entry.Property(u => u.Email).OriginalValue, user.Email, StringComparison.Ordinal);
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
