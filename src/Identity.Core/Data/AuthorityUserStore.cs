using Identity.Core.Operations;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;

namespace Identity.Core.Data;

/// <summary>
/// ASP.NET Core Identity's EF Core user store, which saves on every create, update and delete — except inside an
/// operation (<see cref="ChangeUnit"/>), whose one SaveChanges writes the whole change. There an update of a user the
/// context already tracks only renews its concurrency stamp: the base store's re-attach would take the pending change as
/// stored (an entry set back to Unchanged keeps its current values as original), so a second update in the same
/// operation would lose the first from the change's diff and fail its own concurrency check. The passkey methods, which
/// save on their own, only track there too.
/// </summary>
public sealed class AuthorityUserStore(AuthorityDbContext context, IdentityErrorDescriber? describer = null)
    : UserOnlyStore<ApplicationUser, AuthorityDbContext, string, IdentityUserClaim<string>, IdentityUserLogin<string>,
        IdentityUserToken<string>, IdentityUserPasskey<string>>(context, describer)
{
    public override Task<IdentityResult> CreateAsync(ApplicationUser user, CancellationToken cancellationToken = default)
    {
        if (ChangeUnit.RunningOn(Context) is null)
        {
            return base.CreateAsync(user, cancellationToken);
        }

        ArgumentNullException.ThrowIfNull(user);
        Context.Add(user);
        return Task.FromResult(IdentityResult.Success);
    }

    public override Task<IdentityResult> UpdateAsync(ApplicationUser user, CancellationToken cancellationToken = default)
    {
        if (ChangeUnit.RunningOn(Context) is null)
        {
            return base.UpdateAsync(user, cancellationToken);
        }

        ArgumentNullException.ThrowIfNull(user);
        if (Context.Entry(user).State == EntityState.Detached)
        {
            Context.Update(user);
        }

        user.ConcurrencyStamp = Guid.NewGuid().ToString();
        return Task.FromResult(IdentityResult.Success);
    }

    public override Task<IdentityResult> DeleteAsync(ApplicationUser user, CancellationToken cancellationToken = default)
    {
        if (ChangeUnit.RunningOn(Context) is null)
        {
            return base.DeleteAsync(user, cancellationToken);
        }

        ArgumentNullException.ThrowIfNull(user);
        Context.Remove(user);
        return Task.FromResult(IdentityResult.Success);
    }

    // The passkey methods save on their own (not through UpdateAsync): inside an operation, they only track.
    public override Task AddOrUpdatePasskeyAsync(ApplicationUser user, UserPasskeyInfo passkey, CancellationToken cancellationToken) =>
        TrackOnlyInOperationAsync(() => base.AddOrUpdatePasskeyAsync(user, passkey, cancellationToken));

    public override Task RemovePasskeyAsync(ApplicationUser user, byte[] credentialId, CancellationToken cancellationToken) =>
        TrackOnlyInOperationAsync(() => base.RemovePasskeyAsync(user, credentialId, cancellationToken));

    private async Task TrackOnlyInOperationAsync(Func<Task> write)
    {
        if (ChangeUnit.RunningOn(Context) is null)
        {
            await write();
            return;
        }

        AutoSaveChanges = false;
        try
        {
            await write();
        }
        finally
        {
            AutoSaveChanges = true;
        }
    }
}
