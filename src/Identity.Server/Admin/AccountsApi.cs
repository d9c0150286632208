using Identity.Core.Audit;
using System.Text.Json;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Server.Audit;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Admin;

using Account = Identity.Core.Accounts.Account;

public sealed record AccountView(Guid Id, string Name, string Status, IReadOnlyList<string> Regions, JsonElement Settings,
    int SettingsVersion, long Version, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public static AccountView From(Account a) => new(a.Id, a.Name, a.Status.ToString().ToLowerInvariant(),
        [.. a.Regions.Select(r => r.RegionCode).Order(StringComparer.Ordinal)], JsonDocument.Parse(a.Settings).RootElement.Clone(),
        a.SettingsVersion, a.Version, a.CreatedAt, a.UpdatedAt);
}

public sealed record CreateAccountRequest(string? Name, List<string>? Regions);

public sealed record UpdateAccountRequest(string? Name);

/// <summary>Accounts: the customer companies. Platform administrators create and list them; account admins read and update their own.</summary>
public static class AccountsApi
{
    public static RouteGroupBuilder MapAccountsApi(this RouteGroupBuilder admin)
    {
        var accounts = admin.MapGroup("/accounts").WithTags("Accounts");
        accounts.MapGet("/", ListAsync);
        accounts.MapPost("/", CreateAsync).AcceptsJson<CreateAccountRequest>();
        accounts.MapGet("/{accountId:guid}", GetAsync);
        accounts.MapPatch("/{accountId:guid}", UpdateAsync).AcceptsJson<UpdateAccountRequest>();
        accounts.MapPost("/{accountId:guid}/suspend", (Guid accountId, HttpContext context, AuthorityDbContext db, IAuditTrail audit) =>
            SetStatusAsync(accountId, AccountStatus.Suspended, context, db, audit));
        accounts.MapPost("/{accountId:guid}/activate", (Guid accountId, HttpContext context, AuthorityDbContext db, IAuditTrail audit) =>
            SetStatusAsync(accountId, AccountStatus.Active, context, db, audit));
        accounts.MapDelete("/{accountId:guid}", DeleteAsync);
        accounts.MapPut("/{accountId:guid}/settings", PutSettingsAsync).AcceptsJson<JsonElement>();
        accounts.MapPut("/{accountId:guid}/regions/{region}", EnableRegionAsync);
        accounts.MapDelete("/{accountId:guid}/regions/{region}", DisableRegionAsync);
        return admin;
    }

    private static async Task<IResult> ListAsync(HttpContext context, AuthorityDbContext db, string? after, int? limit)
    {
        var actor = context.Admin();
        if (!AdminHttp.TryDecodeCursor(after, out var cursor) || (cursor is not null && !Guid.TryParse(cursor, out _)))
        {
            return AdminHttp.Invalid("after", "The cursor is not valid.");
        }

        var take = AdminHttp.ClampLimit(limit);
        var query = db.Accounts.AsNoTracking().Include(a => a.Regions).AsQueryable();
        if (!actor.IsPlatformAdmin)
        {
            query = query.Where(a => a.Id == actor.AccountId);
        }

        if (cursor is not null)
        {
            var last = Guid.Parse(cursor);
            query = query.Where(a => a.Id.CompareTo(last) > 0);
        }

        var page = await query.OrderBy(a => a.Id).Take(take + 1).ToListAsync(context.RequestAborted);
        var items = page.Take(take).Select(AccountView.From).ToList();
        return TypedResults.Ok(new Page<AccountView>(items, page.Count > take ? AdminHttp.EncodeCursor(items[^1].Id.ToString()) : null));
    }

    private static async Task<IResult> CreateAsync(HttpContext context, AuthorityDbContext db, IAuditTrail audit, TimeProvider time)
    {
        var actor = context.Admin();
        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        var (body, problem) = await AdminHttp.ReadAsync<CreateAccountRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        var errors = new Dictionary<string, string[]>();
        var name = body!.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 200)
        {
            errors["name"] = ["A name of 1 to 200 characters is required."];
        }

        var requested = body.Regions ?? [];
        if (requested.Any(string.IsNullOrEmpty))
        {
            errors["regions"] = ["Each region must be a region code, not null or empty."];
        }

        var regions = requested.OfType<string>().Where(r => r.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        var known = await db.Regions.Where(r => regions.Contains(r.Code)).Select(r => r.Code).ToListAsync(context.RequestAborted);
        if (!errors.ContainsKey("regions") && regions.Except(known).FirstOrDefault() is { } unknown)
        {
            errors["regions"] = [$"Unknown region '{unknown}'."];
        }

        if (errors.Count > 0)
        {
            return AdminHttp.Invalid(errors);
        }

        var now = time.GetUtcNow();
        var account = new Account
        {
            Id = Guid.CreateVersion7(),
            Name = name!,
            Regions = [.. regions.Select(r => new AccountRegion { RegionCode = r })],
            CreatedAt = now,
            UpdatedAt = now,
        };
        db.Accounts.Add(account);
        audit.Record(actor.Actor, "account.created", "account", account.Id.ToString(), account.Id, new { name = account.Name, regions });
        try
        {
            await db.SaveChangesAsync(context.RequestAborted);
        }
        catch (DbUpdateException ex) when (ex.IsForeignKeyViolation())
        {
            return RegionGone();
        }

        AdminHttp.SetETag(context.Response, account.Version);
        return TypedResults.Created($"/admin/v1/accounts/{account.Id}", AccountView.From(account));
    }

    private static async Task<IResult> GetAsync(Guid accountId, HttpContext context, AuthorityDbContext db)
    {
        var account = await FindAsync(accountId, context, db, tracking: false);
        if (account is null)
        {
            return AdminHttp.NotFound("account");
        }

        AdminHttp.SetETag(context.Response, account.Version);
        return TypedResults.Ok(AccountView.From(account));
    }

    private static async Task<IResult> UpdateAsync(Guid accountId, HttpContext context, AuthorityDbContext db, IAuditTrail audit, TimeProvider time)
    {
        var account = await FindAsync(accountId, context, db, tracking: true);
        if (account is null)
        {
            return AdminHttp.NotFound("account");
        }

        if (AdminHttp.CheckIfMatch(context.Request, account.Version) is { } precondition)
        {
            return precondition;
        }

        var (body, problem) = await AdminHttp.ReadAsync<UpdateAccountRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        var name = body!.Name?.Trim();
        if (name is not null && (name.Length == 0 || name.Length > 200))
        {
            return AdminHttp.Invalid("name", "A name of 1 to 200 characters is required.");
        }

        var before = account.Name;
        account.Name = name ?? account.Name;
        return await SaveAsync(account, context, db, time, () =>
            audit.Record(context.Admin().Actor, "account.updated", "account", account.Id.ToString(), account.Id,
                new { name = new { before, after = account.Name } }));
    }

    /// <summary>
    /// Replaces the account's settings document (policies arrive with the MFA/policy work; the document is stored
    /// and versioned now). Account admins may change their own account's settings; the audit keeps before → after.
    /// </summary>
    private static async Task<IResult> PutSettingsAsync(Guid accountId, HttpContext context, AuthorityDbContext db, IAuditTrail audit, TimeProvider time)
    {
        var account = await FindAsync(accountId, context, db, tracking: true);
        if (account is null)
        {
            return AdminHttp.NotFound("account");
        }

        if (AdminHttp.CheckIfMatch(context.Request, account.Version) is { } precondition)
        {
            return precondition;
        }

        var (body, problem) = await AdminHttp.ReadAsync<JsonDocument>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        using (body)
        {
            // The settings document is the account's policy: parsed strictly, stored complete (every default written out).
            var policy = Identity.Core.Policies.AccountPolicy.Parse(body!.RootElement.GetRawText(), out var errors);
            if (policy is null)
            {
                return AdminHttp.Invalid(errors.ToDictionary(e => e.Key == "$" ? "settings" : "settings." + e.Key, e => e.Value));
            }

            var raw = policy.ToJson();
            var before = account.Settings;
            account.Settings = raw;
            account.SettingsVersion++;
            return await SaveAsync(account, context, db, time, () =>
                audit.Record(context.Admin().Actor, "account.settings_changed", "account", account.Id.ToString(), account.Id,
                    new { settingsVersion = account.SettingsVersion, before = JsonDocument.Parse(before).RootElement, after = JsonDocument.Parse(raw).RootElement }));
        }
    }

    private static async Task<IResult> SetStatusAsync(Guid accountId, AccountStatus status, HttpContext context, AuthorityDbContext db, IAuditTrail audit)
    {
        var actor = context.Admin();
        var account = await FindAsync(accountId, context, db, tracking: true);
        if (account is null)
        {
            return AdminHttp.NotFound("account");
        }

        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        if (account.Status == status)
        {
            return TypedResults.Ok(AccountView.From(account));
        }

        var before = account.Status;
        account.Status = status;
        return await SaveAsync(account, context, db, context.RequestServices.GetRequiredService<TimeProvider>(), () =>
            audit.Record(actor.Actor, status == AccountStatus.Suspended ? "account.suspended" : "account.activated", "account",
                account.Id.ToString(), account.Id, new { status = new { before, after = status } }));
    }

    private static async Task<IResult> DeleteAsync(Guid accountId, HttpContext context, AuthorityDbContext db, IAuditTrail audit)
    {
        var actor = context.Admin();
        if (!actor.IsPlatformAdmin)
        {
            return actor.CanSee(accountId) ? AdminActorExtensions.PlatformOnly() : AdminHttp.NotFound("account");
        }

        var account = await db.Accounts.SingleOrDefaultAsync(a => a.Id == accountId, context.RequestAborted);
        if (account is null)
        {
            return TypedResults.NoContent(); // idempotent: already gone
        }

        await using var transaction = await db.Database.BeginTransactionAsync(context.RequestAborted);
        await db.Users.Where(u => u.AccountId == accountId).ExecuteDeleteAsync(context.RequestAborted);
        db.Accounts.Remove(account);
        audit.Record(actor.Actor, "account.deleted", "account", account.Id.ToString(), account.Id, new { name = account.Name });
        await db.SaveChangesAsync(context.RequestAborted);
        await transaction.CommitAsync(context.RequestAborted);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> EnableRegionAsync(Guid accountId, string region, HttpContext context, AuthorityDbContext db, IAuditTrail audit, TimeProvider time)
    {
        var actor = context.Admin();
        var account = await FindAsync(accountId, context, db, tracking: true);
        if (account is null)
        {
            return AdminHttp.NotFound("account");
        }

        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        if (!await db.Regions.AnyAsync(r => r.Code == region, context.RequestAborted))
        {
            return AdminHttp.Invalid("region", $"Unknown region '{region}'.");
        }

        if (account.Regions.Any(r => r.RegionCode == region))
        {
            return TypedResults.Ok(AccountView.From(account));
        }

        account.Regions.Add(new AccountRegion { AccountId = account.Id, RegionCode = region });
        return await SaveAsync(account, context, db, time, () =>
            audit.Record(actor.Actor, "account.region_enabled", "account", account.Id.ToString(), account.Id, new { region }));
    }

    private static async Task<IResult> DisableRegionAsync(Guid accountId, string region, HttpContext context, AuthorityDbContext db, IAuditTrail audit, TimeProvider time)
    {
        var actor = context.Admin();
        var account = await FindAsync(accountId, context, db, tracking: true);
        if (account is null)
        {
            return AdminHttp.NotFound("account");
        }

        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        var link = account.Regions.FirstOrDefault(r => r.RegionCode == region);
        if (link is null)
        {
            return TypedResults.Ok(AccountView.From(account)); // idempotent
        }

        account.Regions.Remove(link);
        return await SaveAsync(account, context, db, time, () =>
            audit.Record(actor.Actor, "account.region_disabled", "account", account.Id.ToString(), account.Id, new { region }));
    }

    /// <summary>Bumps the version (the optimistic-concurrency token) and saves the change with its audit entry.</summary>
    private static async Task<IResult> SaveAsync(Account account, HttpContext context, AuthorityDbContext db, TimeProvider time, Action recordAudit)
    {
        account.Version++;
        account.UpdatedAt = time.GetUtcNow();
        recordAudit();
        try
        {
            await db.SaveChangesAsync(context.RequestAborted);
        }
        catch (DbUpdateConcurrencyException)
        {
            return AdminHttp.Stale();
        }
        catch (DbUpdateException ex) when (ex.IsForeignKeyViolation())
        {
            return RegionGone(); // the one write here with a foreign key of its own: a region link
        }

        AdminHttp.SetETag(context.Response, account.Version);
        return TypedResults.Ok(AccountView.From(account));
    }

    /// <summary>A region checked a moment ago was deleted before the write: nothing was written (one transaction).</summary>
    private static IResult RegionGone() => AdminHttp.Conflict("The region was deleted meanwhile: nothing was changed.");

    /// <summary>An account the caller may not see is reported as absent (404), never as forbidden.</summary>
    internal static async Task<Account?> FindAsync(Guid accountId, HttpContext context, AuthorityDbContext db, bool tracking)
    {
        if (!context.Admin().CanSee(accountId))
        {
            return null;
        }

        var query = db.Accounts.Include(a => a.Regions).Where(a => a.Id == accountId);
        return await (tracking ? query : query.AsNoTracking()).SingleOrDefaultAsync(context.RequestAborted);
    }
}
