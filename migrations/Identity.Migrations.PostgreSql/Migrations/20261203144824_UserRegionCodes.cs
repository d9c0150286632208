using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Identity.Migrations.PostgreSql.Migrations
{
    /// <inheritdoc />
    public partial class UserRegionCodes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "RegionCodes",
                table: "AspNetUsers",
                type: "character varying(1000)",
                maxLength: 1000,
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "RegionCodes",
                table: "AspNetUsers");
        }
    }
}
